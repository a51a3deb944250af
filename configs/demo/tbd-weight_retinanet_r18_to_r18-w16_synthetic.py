# TBD, the other reading of how HD uses the harmony score: a per-location
# weight of the distillation of the teacher's probabilities, instead of the
# soft target of the ground-truth class (docs/methods/tbd.md, "HD").
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(loss_hd=dict(positive_target='teacher', harmony_weight=True))
