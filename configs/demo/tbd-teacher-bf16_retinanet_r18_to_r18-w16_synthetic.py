# TBD on the RetinaNet demo pair with the lighter teacher: its backbone and
# neck stored and run in bfloat16 (`teacher_dtype`), its head and every
# loss in float32. Paired with tbd_retinanet_... to measure what the lighter
# teacher costs in AP (docs/results.md).
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(teacher_dtype='bfloat16')
