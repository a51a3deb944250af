# FGD on COCO, 2x: Faster R-CNN R-101 teacher -> Faster R-CNN R-50 student,
# the authors' setting (yzd-v/FGD at c03a6cf,
# configs/distillers/fgd/fgd_faster_rcnn_r101_fpn_2x_distill_faster_rcnn_r50_fpn_2x_coco.py):  # noqa: E501
# temperature 0.5, alpha 5e-5, beta 2.5e-5, gamma 5e-5, lambda 5e-7 on the
# first four FPN levels (P2-P5), gradient clipping at 35, and the
# inheriting strategy. Download the
# teacher from mmdet's model zoo (faster-rcnn_r101_fpn_2x_coco) to
# teacher_ckpt. No published number: the README's 42.0 for a Faster R-CNN
# R-50 student (38.4) comes from a Cascade Mask R-CNN X-101 teacher
# (docs/methods/fgd.md).
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
    inherit_teacher=True,  # the authors' inheriting strategy
    methods=[
        dict(type='FGD', temperature=0.5, alpha_fg=5e-5, beta_bg=2.5e-5,
             gamma_attention=5e-5, lambda_global=5e-7, levels=[0, 1, 2, 3]),
    ])
# Faster R-CNN's optimiser settings (8 GPUs x 2 images), the authors'
# clipping
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)
