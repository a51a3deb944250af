# SEA on COCO instance segmentation: Mask R-CNN R-101 (multi-scale 3x)
# teacher -> Mask R-CNN R-50 student, 1x schedule. Download the teacher from
# mmdet's model zoo (mask-rcnn_r101_fpn_ms-poly-3x_coco) and point
# teacher_ckpt at it. The instance pipeline loads masks, so the category
# masks come from the instance masks instead of the boxes (use_masks=True).
_base_ = [
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    teacher='mmdet::mask_rcnn/mask-rcnn_r101_fpn_ms-poly-3x_coco.py',
    teacher_ckpt='checkpoints/mask-rcnn_r101_fpn_ms-poly-3x_coco.pth',
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
                levels=None,  # all five FPN levels, P2-P6
                use_masks=True,  # category masks from the instance masks
                # not from the paper; see docs/methods/sea.md
                loss_weight=10.0,
                anchor_weight=0.0)),
    ])

auto_scale_lr = dict(enable=False, base_batch_size=16)
