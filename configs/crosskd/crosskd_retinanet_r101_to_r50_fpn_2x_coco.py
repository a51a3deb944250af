# CrossKD on COCO, 2x: RetinaNet R-101 teacher -> RetinaNet R-50 student,
# the authors' setting (jbwang1997/CrossKD,
# configs/crosskd/crosskd_r50_retinanet_r101_fpn_2x_coco.py): the student's
# features after tower layer 3 of 4 run through the teacher's last tower
# layer and predictors; KDQualityFocalLoss (beta 1) and GIoU on the decoded
# boxes, both weight 1. Both heads have 256 channels, so no adapter.
# Download the teacher from mmdet's model zoo (retinanet_r101_fpn_2x_coco) to
# teacher_ckpt; the student starts from ImageNet weights.
# Published: 39.7 AP (student 37.4, teacher 38.9).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r101_fpn_2x_coco.pth',
    methods=[
        dict(type='CrossKD', reused_teacher_head_idx=3,
             loss_cls=dict(type='KDQualityFocalLoss', beta=1.0,
                           loss_weight=1.0),
             loss_reg=dict(type='GIoULoss', loss_weight=1.0)),
    ])
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
