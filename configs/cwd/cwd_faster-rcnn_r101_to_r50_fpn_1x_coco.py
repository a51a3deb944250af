# CWD on COCO, 1x: Faster R-CNN R-101 teacher -> Faster R-CNN R-50 student,
# as MMRazor's CWD config (cwd_fpn_frcnn_r101_frcnn_r50_1x_coco): CWDLoss
# with tau 1 and weight 10 on all five FPN levels (P2-P6), 256 channels in
# both necks. Download the teacher from mmdet's model zoo
# (faster-rcnn_r101_fpn_2x_coco) to teacher_ckpt. No published AP for this
# setting (see docs/methods/cwd.md).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/faster-rcnn_r101_fpn_2x_coco.pth',
    methods=[
        dict(type='CWD', levels=None, adapter=None,
             loss_feat=dict(type='CWDLoss', tau=1.0, loss_weight=10.0)),
    ])
auto_scale_lr = dict(enable=False, base_batch_size=16)
