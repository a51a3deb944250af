# PKD on COCO, 2x: Faster R-CNN R-101 teacher -> Faster R-CNN R-50 student,
# the authors' setting (their MMRazor config
# pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x_coco): PKDLoss with weight 6 on
# the first four FPN levels (P2-P5); both necks have 256 channels, so no
# adapter. Download the teacher from mmdet's model zoo
# (faster-rcnn_r101_fpn_2x_coco) to teacher_ckpt; the student starts from
# ImageNet weights. Published: 40.3 AP (student 38.4, teacher 39.8).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/faster-rcnn_r101_fpn_2x_coco.pth',
    methods=[
        dict(type='PKD', levels=[0, 1, 2, 3], adapter=None,
             loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
    ])
auto_scale_lr = dict(enable=False, base_batch_size=16)
