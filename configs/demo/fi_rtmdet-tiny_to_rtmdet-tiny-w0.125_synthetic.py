# Plain feature imitation (MSE on adapted CSPNeXt-PAFPN features) on the
# RTMDet demo pair: the baseline the other methods are paired with. The
# RTMDet neck ends in BatchNorm and SiLU, so its features are small (mean
# square about 1.5 on the demo teacher, against several hundred for the
# RetinaNet teacher's FPN): weight 1, not the RetinaNet demo's 0.01, so
# that the term starts at about the size of the detection losses. Not
# tuned.
_base_ = '../_base_/distiller_rtmdet-tiny_to_rtmdet-tiny-w0.125_synthetic.py'

model = dict(methods=[
    dict(type='FeatureImitation', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='FeatureMSELoss', loss_weight=1.0)),
])
