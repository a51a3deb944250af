# The RetinaNet demo pair with the student of the teacher's neck and head
# widths (retinanet_r18-w16-fpn128_synthetic.py): the pair on which
# inheriting the teacher's neck and head (inherit_teacher=True) copies what
# it copies on the authors' pairs. A config inheriting it sets only
# `model.methods` (and `model.inherit_teacher`).
_base_ = './distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    student='{{fileDirname}}/../demo/retinanet_r18-w16-fpn128_synthetic.py')
