# SEA on COCO: RetinaNet R-101 (multi-scale 3x) teacher -> RetinaNet R-50
# student, 1x schedule. Download the teacher from mmdet's model zoo
# (retinanet_r101_fpn_ms-640-800-3x_coco) and point teacher_ckpt at it; the
# student starts from ImageNet weights. See docs/methods/sea.md for which
# settings are the paper's and which are reconstructed.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    teacher='mmdet::retinanet/retinanet_r101_fpn_ms-640-800-3x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r101_fpn_ms-640-800-3x_coco.pth',
    methods=[
        dict(
            type='SEA',
            loss_sea=dict(
                type='SEALoss',
                temperature=0.1,
                distance='cosine',
                anchor_scope='image',
                background_anchor=True,
                balance=True,
                fg_weight=1.0,
                bg_weight=1.0,
                levels=None,  # all five FPN levels, P3-P7
                # the COCO detection pipeline loads no masks: boxes are used
                use_masks=True,
                # not from the paper; see docs/methods/sea.md
                loss_weight=10.0,
                anchor_weight=0.0)),
    ])

# RetinaNet's own optimiser settings (8 GPUs x 2 images)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
