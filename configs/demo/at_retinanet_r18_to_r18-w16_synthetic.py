# Attention transfer (docs/adding_a_method.md's worked example) on two
# backbone stages, read by module path; RetinaNet R-18 teacher -> narrow R-18
# student, on the generated data set. The stages differ in channels (the
# attention map averages them away) and agree in stride.
_base_ = [
    '../_base_/datasets/synthetic_coco_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='{{fileDirname}}/retinanet_r18-w16_synthetic.py',
    teacher='{{fileDirname}}/retinanet_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/retinanet_r18_synthetic/teacher.pth',
    methods=[
        dict(type='AttentionTransfer',
             paths=('backbone.layer2', 'backbone.layer3'), beta=1000.0),
    ])
