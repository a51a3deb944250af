# MGD on COCO, 2x: RetinaNet X-101-64x4d (multi-scale 3x) teacher ->
# RetinaNet R-50 student, the authors' setting (yzd-v/MGD
# det/configs/distillers/mgd/retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco):  # noqa: E501
# alpha 2e-5, mask ratio 0.65 on all five FPN levels, gradient clipping at
# 35, and the inheriting strategy (init_student=True, as in the authors'
# configs whose teacher and student share the detector type: the student's
# neck and head start from the teacher's; yzd-v/MGD@2c9da0b,
# det/mmdet/distillation/distillers/detection_distiller.py). Download the
# teacher from mmdet's model zoo (retinanet_x101-64x4d_fpn_ms-640-800-3x_coco)
# to teacher_ckpt; the student
# starts from ImageNet weights. Published: 41.0 AP (student 37.4).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_x101-64x4d_fpn_ms-640-800-3x_coco.py',
    teacher_ckpt='checkpoints/retinanet_x101-64x4d_fpn_ms-640-800-3x_coco.pth',
    inherit_teacher=True,  # the authors' inheriting strategy
    methods=[dict(type='MGD', alpha=2e-5, mask_ratio=0.65, levels=None)])
# RetinaNet's optimiser settings (8 GPUs x 2 images), the authors' clipping
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)
