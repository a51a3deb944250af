# The GFL demo pair in a Distiller, on the generated data set: GFL R-18
# teacher -> narrow GFL R-18 student (16 base channels, 64-channel FPN and
# head), the demo teacher's checkpoint, and the demo schedule and runtime.
# A config inheriting it sets only `model.methods`.
_base_ = [
    './datasets/synthetic_coco_detection.py',
    './schedules/synthetic_iters.py',
    './synthetic_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='{{fileDirname}}/../demo/gfl_r18-w16_synthetic.py',
    teacher='{{fileDirname}}/../demo/gfl_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/gfl_r18_synthetic/teacher.pth',
    methods=[])
