# ADL on the RTMDet demo pair: the dense sigmoid class logits of the two
# RTMDet heads (one point per location, the same strides), with the
# RetinaNet demo's loss (the authors' gamma=2, beta=1, theta=1.8, T=1, the
# paper's w*KL and the normaliser over the kept positions). RTMDet's
# assigner ignores no position, so every position is kept. Not tuned.
_base_ = '../_base_/distiller_rtmdet-tiny_to_rtmdet-tiny-w0.125_synthetic.py'

model = dict(methods=[
    dict(type='ADL',
         loss_adl=dict(type='ADLoss', beta=1.0, gamma=2.0, theta=1.8,
                       base='kl', normaliser='kept', temperature=1.0,
                       loss_weight=1.0)),
])
