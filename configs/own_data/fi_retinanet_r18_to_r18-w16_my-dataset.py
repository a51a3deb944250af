# Feature imitation from your teacher to your student on your own data set
# (docs/own_data.md). Swap `type` and the loss for another method, e.g. the
# model dicts of configs/sea/ or configs/tbd/.
_base_ = [
    '../_base_/datasets/my_dataset_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='FeatureImitationDistiller',
    student='{{fileDirname}}/retinanet_r18-w16_my-dataset.py',
    teacher='{{fileDirname}}/retinanet_r18_my-dataset.py',
    teacher_ckpt='work_dirs/retinanet_r18_my-dataset/iter_600.pth',
    adapter=dict(type='ConvAdapter'),
    loss_feat=dict(type='FeatureMSELoss', loss_weight=0.01))
