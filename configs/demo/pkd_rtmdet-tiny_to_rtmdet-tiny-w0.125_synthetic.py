# PKD (Pearson-correlation imitation of the neck levels) on the RTMDet demo
# pair, with the RetinaNet demo's weight (6, the authors' for Faster R-CNN;
# PKD normalises the features, so their scale does not matter). Not tuned.
_base_ = '../_base_/distiller_rtmdet-tiny_to_rtmdet-tiny-w0.125_synthetic.py'

model = dict(methods=[
    dict(type='PKD', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
])
