# Demo YOLOX teacher: mmdet's YOLOX-tiny architecture
# (yolox/yolox_tiny_8xb8-300e_coco.py: CSPDarknet with deepen 0.33 and
# widen 0.375, a 96-channel YOLOX-PAFPN, the decoupled head with
# objectness, SimOTA assignment, sigmoid cross-entropy and square-IoU
# losses) trained from scratch on the generated data set for 1200
# iterations like the other demo teachers. Left out of mmdet's recipe:
# mosaic, random affine, mix-up and the multi-scale batch resize (the
# demo's images are 128 px), the L1 loss of the last epochs and EMA.
_base_ = [
    '../_base_/datasets/synthetic_coco_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
model = dict(
    type='YOLOX',
    data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
    backbone=dict(
        type='CSPDarknet',
        deepen_factor=0.33,
        widen_factor=0.375,
        out_indices=(2, 3, 4),
        use_depthwise=False,
        spp_kernal_sizes=(5, 9, 13),
        norm_cfg=norm_cfg,
        act_cfg=dict(type='Swish')),
    neck=dict(
        type='YOLOXPAFPN',
        in_channels=[96, 192, 384],
        out_channels=96,
        num_csp_blocks=1,
        use_depthwise=False,
        upsample_cfg=dict(scale_factor=2, mode='nearest'),
        norm_cfg=norm_cfg,
        act_cfg=dict(type='Swish')),
    bbox_head=dict(
        type='YOLOXHead',
        num_classes=6,
        in_channels=96,
        feat_channels=96,
        stacked_convs=2,
        strides=(8, 16, 32),
        use_depthwise=False,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='Swish'),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            reduction='sum',
            loss_weight=1.0),
        loss_bbox=dict(
            type='IoULoss',
            mode='square',
            eps=1e-16,
            reduction='sum',
            loss_weight=5.0),
        loss_obj=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            reduction='sum',
            loss_weight=1.0),
        loss_l1=dict(type='L1Loss', reduction='sum', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
    test_cfg=dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.65)))

max_iters = 1200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
