# The two-stage to one-stage demo pair in a Distiller, on the generated data
# set: the Faster R-CNN R-18 demo teacher and the narrow RetinaNet R-18
# student, with the RetinaNet pair's data, schedule and runtime. Both models
# normalise images alike (pytorch-style mean and std). A config inheriting it
# sets only `model.methods`.
_base_ = './distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    teacher='{{fileDirname}}/../demo/faster-rcnn_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/faster-rcnn_r18_synthetic/teacher.pth')
