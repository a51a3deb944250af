# HMLD (DETRDistill's Hungarian-matching logits distillation) on the DINO
# demo pair, with the authors' matching costs and loss weights (class 1,
# L1 5, GIoU 2), every decoder layer from the teacher's of the same depth.
# Not tuned.
_base_ = '../_base_/distiller_dino-r18_to_dino-r18-w16_synthetic.py'

model = dict(methods=[dict(type='HMLD')])
