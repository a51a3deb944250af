# The DINO demo pair in a Distiller, on the generated data set: the
# RetinaNet demo pair's data, schedule and runtime with the DINO R-18
# teacher and its narrow student (configs/demo/dino_r18*_synthetic.py),
# the student's AdamW at lr 2e-4 with DINO's gradient clipping, and the
# DINO teacher's checkpoint. A config inheriting it sets only
# `model.methods`.
_base_ = './distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    student='{{fileDirname}}/../demo/dino_r18-w16_synthetic.py',
    teacher='{{fileDirname}}/../demo/dino_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/dino_r18_synthetic/teacher.pth')
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2))
