# The GFL demo teacher on the second generated data set (20 classes,
# 160-px images, 4-12 objects of 8-48 px; see
# retinanet_r18_synthetic-varied.py): the RetinaNet teacher on that data
# set with gfl_r18_synthetic.py's head, anchors and assigner. mmengine
# refuses a key defined in two bases, so the head is restated here rather
# than inherited from gfl_r18_synthetic.py; keep the two in step.
_base_ = './retinanet_r18_synthetic-varied.py'
model = dict(
    type='GFL',
    bbox_head=dict(
        _delete_=True,
        type='GFLHead',
        num_classes=20,
        in_channels=128,
        stacked_convs=2,
        feat_channels=128,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
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
