# Plain feature imitation (MSE on adapted FPN features), RetinaNet R-18 teacher
# -> narrow R-18 student, on the generated data set. The baseline every
# method has to beat.
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
        dict(
            type='FeatureImitation',
            adapter=dict(type='ConvAdapter'),
            # the teacher FPN features are large (initial MSE about 800), so a
            # small weight keeps the term from swamping the detection losses
            loss_feat=dict(type='FeatureMSELoss', loss_weight=0.01)),
    ])
