# PKD on COCO for TOOD, the family sea_kd captures through its view alone
# (docs/adding_a_detector_family.md): TOOD R-101 teacher (mmdet's model
# zoo, tood_r101_fpn_ms-2x_coco, 46.1 AP) -> TOOD R-50 student (mmdet's
# tood_r50_fpn_1x_coco, 42.4 AP), 1x, with TOOD's own optimiser settings
# (SGD, lr 0.01). PKD's one-stage setting (the authors' RetinaNet weight
# 10 on P3-P6; both necks have 256 channels, so no adapter). The authors
# publish no TOOD setting. Download the teacher to teacher_ckpt; the
# student starts from ImageNet weights.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::tood/tood_r50_fpn_1x_coco.py',
    teacher='mmdet::tood/tood_r101_fpn_ms-2x_coco.py',
    teacher_ckpt='checkpoints/tood_r101_fpn_ms-2x_coco.pth',
    methods=[
        dict(type='PKD', levels=[0, 1, 2, 3], adapter=None,
             loss_feat=dict(type='PKDLoss', loss_weight=10.0)),
    ])
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
