# Plain feature imitation (MSE on adapted YOLOX-PAFPN features) on the
# YOLOX demo pair: the baseline the other methods are paired with. Like
# RTMDet's, the YOLOX neck ends in BatchNorm and Swish, so its features are
# small: weight 1, as on the RTMDet demo pair. Not tuned.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(methods=[
    dict(type='FeatureImitation', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='FeatureMSELoss', loss_weight=1.0)),
])
