# The Faster R-CNN demo pair in a Distiller, on the generated data set: the
# RetinaNet demo pair's data, schedule and runtime with the Faster R-CNN R-18
# teacher and the narrow Faster R-CNN R-18 student (16 base channels,
# 64-channel FPN) and the Faster R-CNN teacher's checkpoint. A config
# inheriting it sets only `model.methods`.
_base_ = './distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    student='{{fileDirname}}/../demo/faster-rcnn_r18-w16_synthetic.py',
    teacher='{{fileDirname}}/../demo/faster-rcnn_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/faster-rcnn_r18_synthetic/teacher.pth')
