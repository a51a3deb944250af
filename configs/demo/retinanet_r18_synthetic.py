# Demo teacher: RetinaNet with a ResNet-18 (64 base channels) and a 128-channel
# FPN, trained from scratch on the generated data set.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/synthetic_coco_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
model = dict(
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(
        num_classes=6,
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,
        # objects are 10-64 px on 128-px images: smaller anchors than COCO's
        anchor_generator=dict(octave_base_scale=2)))
