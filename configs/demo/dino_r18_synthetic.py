# Demo DINO teacher: mmdet's DINO 4-scale (dino/dino-4scale_r50_8xb2-12e_coco
# .py: two-stage query selection, box refinement, contrastive denoising,
# Hungarian matching) scaled to the generated data set: a ResNet-18 trained
# from scratch (BatchNorm trained), mmdet's 256-dimensional transformer
# (its decoder's reference-point encoding assumes 256) with 2 encoder and
# 3 decoder layers and feed-forward 1024, 100 queries (the 128-px images
# give 340 encoder positions over the four levels) and 50 denoising
# queries; 6 classes. AdamW at lr 2e-4 with DINO's gradient clipping (0.1),
# 1200 iterations like the other demo teachers.
_base_ = [
    '../_base_/datasets/synthetic_coco_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
embed_dims = 256
model = dict(
    type='DINO',
    num_queries=100,
    with_box_refine=True,
    as_two_stage=True,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    neck=dict(
        type='ChannelMapper',
        in_channels=[128, 256, 512],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(
                embed_dims=embed_dims, num_levels=4, dropout=0.0),
            ffn_cfg=dict(
                embed_dims=embed_dims, feedforward_channels=1024,
                ffn_drop=0.0))),
    decoder=dict(
        num_layers=3,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(
                embed_dims=embed_dims, num_heads=8, dropout=0.0),
            cross_attn_cfg=dict(
                embed_dims=embed_dims, num_levels=4, dropout=0.0),
            ffn_cfg=dict(
                embed_dims=embed_dims, feedforward_channels=1024,
                ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(
        num_feats=embed_dims // 2, normalize=True, offset=0.0,
        temperature=20),
    bbox_head=dict(
        type='DINOHead',
        num_classes=6,
        embed_dims=embed_dims,
        sync_cls_avg_factor=True,
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    dn_cfg=dict(
        label_noise_scale=0.5,
        box_noise_scale=1.0,
        group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=50)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=100))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2))
max_iters = 1200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
