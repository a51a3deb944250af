# Demo FCOS student: the narrow RetinaNet demo student's backbone and FPN
# (ResNet-18 with 16 base channels, 64-channel FPN, P3-P7) with mmdet's FCOS
# head (fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py: one point per location,
# GroupNorm towers, centerness); the student of the heterogeneous dense pair
# (GFL R-18 teacher, configs/_base_/distiller_gfl-r18_to_fcos-r18-w16_...).
# Trained for the base schedule (600 iterations).
_base_ = './retinanet_r18-w16_synthetic.py'
model = dict(
    type='FCOS',
    bbox_head=dict(
        _delete_=True,
        type='FCOSHead',
        num_classes=6,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # objects are 10-64 px on 128-px images: COCO's ranges halved, as
        # the GFL teacher's anchors are (octave_base_scale 4 instead of 8)
        regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 256),
                        (256, 1e8)),
        norm_on_bbox=True,
        centerness_on_reg=True,
        center_sampling=True,
        conv_bias=True,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(_delete_=True),
    test_cfg=dict(nms=dict(type='nms', iou_threshold=0.6)))
