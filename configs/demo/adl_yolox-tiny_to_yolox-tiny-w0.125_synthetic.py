# ADL on the YOLOX demo pair: the class logits of the two YOLOX heads read
# as their detection scores (class times objectness, as logits), one point
# per location at the same strides; the RetinaNet demo config's loss (the
# authors' gamma 2, beta 1, theta 1.8, weight 1), balanced
# (GradientShareBalance, target 0.9). Not tuned on this pair.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[
        dict(type='ADL', loss_adl=dict(
            type='ADLoss', beta=1.0, gamma=2.0, theta=1.8, base='kl',
            normaliser='kept', temperature=1.0, loss_weight=1.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
