# FGD on COCO, 2x: RetinaNet X-101-64x4d teacher -> RetinaNet R-50 student,
# the authors' setting (yzd-v/FGD at c03a6cf,
# configs/distillers/fgd/fgd_retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py):  # noqa: E501
# temperature 0.5, alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6 on all
# five FPN levels, gradient clipping at 35, and the inheriting strategy (the
# student's neck and head start from the teacher's). Their teacher is
# mmdet's 1x RetinaNet X-101-64x4d; download it
# (retinanet_x101-64x4d_fpn_1x_coco) to teacher_ckpt. The student's
# backbone starts from ImageNet weights.
# Published: 40.7 AP (student 37.4).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/retinanet_x101-64x4d_fpn_1x_coco.pth',
    inherit_teacher=True,  # the authors' inheriting strategy
    methods=[
        dict(type='FGD', temperature=0.5, alpha_fg=1e-3, beta_bg=5e-4,
             gamma_attention=5e-4, lambda_global=5e-6, levels=None),
    ])
# RetinaNet's optimiser settings (8 GPUs x 2 images), the authors' clipping
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)
