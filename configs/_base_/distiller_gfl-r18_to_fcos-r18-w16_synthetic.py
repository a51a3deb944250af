# The heterogeneous dense demo pair in a Distiller, on the generated data
# set: the GFL R-18 demo teacher (one anchor per location, strides 8-128)
# and the narrow FCOS R-18 student (one point per location at the same
# strides), so the dense methods match their predictions cell by cell
# (docs/compatibility.md, "Heterogeneous dense pairs"). A config inheriting
# it sets only `model.methods`.
_base_ = './distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    student='{{fileDirname}}/../demo/fcos_r18-w16_synthetic.py',
    teacher='{{fileDirname}}/../demo/gfl_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/gfl_r18_synthetic/teacher.pth')
