# PKD (Pearson-correlation imitation of the neck levels) on the YOLOX demo
# pair: the authors' weight 6 (Faster R-CNN), balanced
# (GradientShareBalance, target 0.9, the one setting chosen on val for all
# demo methods). Not tuned on this pair.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[
        dict(type='PKD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
