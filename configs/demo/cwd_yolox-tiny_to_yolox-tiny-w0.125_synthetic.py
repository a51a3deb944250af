# CWD (channel-wise distillation of the neck levels) on the YOLOX demo
# pair: the authors' tau 1 and weight 10; a 1x1 adapter maps the student's
# 32 channels to the teacher's 96; balanced (GradientShareBalance, target
# 0.9). Not tuned on this pair.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[
        dict(type='CWD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='CWDLoss', tau=1.0, loss_weight=10.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
