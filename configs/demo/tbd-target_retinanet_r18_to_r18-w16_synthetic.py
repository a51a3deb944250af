# TBD, the other reading of how HD uses the harmony score: the soft target
# of the ground-truth class at positives (the teacher's probability
# elsewhere), instead of a per-location weight of the distillation of the
# teacher's probabilities (docs/methods/tbd.md, "HD"). It was the default
# until the paired comparison on val chose the weight reading.
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(loss_hd=dict(positive_target='harmony', harmony_weight=False))
