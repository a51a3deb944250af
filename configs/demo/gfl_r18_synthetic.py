# Demo GFL teacher: the RetinaNet demo teacher (ResNet-18, 128-channel FPN,
# same data and schedule: 1200 iterations from scratch) with mmdet's GFL
# head (gfl/gfl_r50_fpn_1x_coco.py: quality focal loss, box edges as
# distributions over 0..reg_max, ATSS assignment). The pair for the methods
# that read box distributions (LD) and for CrossKD on GFL.
_base_ = './retinanet_r18_synthetic.py'
model = dict(
    type='GFL',
    bbox_head=dict(
        _delete_=True,
        type='GFLHead',
        num_classes=6,
        in_channels=128,
        stacked_convs=2,
        feat_channels=128,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        # objects are 10-64 px on 128-px images: one 32-px anchor on P3
        # instead of COCO's 64 px (octave_base_scale 8)
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=4,
            scales_per_octave=1,
            strides=[8, 16, 32, 64, 128]),
        loss_cls=dict(
            type='QualityFocalLoss',
            use_sigmoid=True,
            beta=2.0,
            loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=16,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(type='ATSSAssigner', topk=9),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(nms=dict(type='nms', iou_threshold=0.6)))
