# The YOLOX demo pair in a Distiller, on the generated data set: the
# RetinaNet demo pair's data, schedule and runtime with the YOLOX-tiny
# teacher and the student a third as wide, and the YOLOX teacher's
# checkpoint. A config inheriting it sets only `model.methods`.
_base_ = './distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    student='{{fileDirname}}/../demo/yolox_tiny-w0.125_synthetic.py',
    teacher='{{fileDirname}}/../demo/yolox_tiny_synthetic.py',
    teacher_ckpt='work_dirs/demo/yolox_tiny_synthetic/teacher.pth')
