# Feature imitation from your teacher to your student on your own data set
# (docs/own_data.md). Swap `type` and the loss for another method, e.g. the
# model dicts of the demo configs (configs/demo/), which are balanced the
# same way.
_base_ = [
    '../_base_/datasets/my_dataset_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='{{fileDirname}}/retinanet_r18-w16_my-dataset.py',
    teacher='{{fileDirname}}/retinanet_r18_my-dataset.py',
    teacher_ckpt='work_dirs/retinanet_r18_my-dataset/iter_600.pth',
    methods=[
        dict(
            type='FeatureImitation',
            adapter=dict(type='ConvAdapter'),
            # 0.01 suits the demo teacher's FPN features (initial MSE about
            # 800); the balance keeps the term at a share of the student's own
            # gradient whatever your features' scale (docs/own_data.md, section
            # 6)
            loss_feat=dict(type='FeatureMSELoss', loss_weight=0.01)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
