# Plain feature imitation (MSE on adapted FPN features) on the GFL demo
# pair: the baseline LD and CrossKD are paired with, with the RetinaNet demo
# FI's weight (0.01; the teacher's FPN features are large), not tuned.
_base_ = '../_base_/distiller_gfl_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='FeatureImitation', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='FeatureMSELoss', loss_weight=0.01)),
])
