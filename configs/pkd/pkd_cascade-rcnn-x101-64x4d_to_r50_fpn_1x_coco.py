# PKD on COCO for Cascade R-CNN: Cascade R-CNN X-101-64x4d teacher (mmdet's
# model zoo, cascade-rcnn_x101-64x4d_fpn_1x_coco, 44.7 AP) -> Cascade R-CNN
# R-50 student (mmdet's cascade-rcnn_r50_fpn_1x_coco, 40.3 AP), 1x: PKD's
# Faster R-CNN setting (weight 6 on the first four FPN levels, P2-P5; 256
# channels in both necks, no adapter). The authors publish no Cascade
# R-CNN setting. Download the teacher to teacher_ckpt; the student starts
# from ImageNet weights.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    teacher='mmdet::cascade_rcnn/cascade-rcnn_x101-64x4d_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/cascade-rcnn_x101-64x4d_fpn_1x_coco.pth',
    methods=[
        dict(type='PKD', levels=[0, 1, 2, 3], adapter=None,
             loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
    ])
auto_scale_lr = dict(enable=False, base_batch_size=16)
