# Teacher for your own data set (docs/own_data.md): the demo's RetinaNet R-18
# with the head set to your number of classes. For real data, start from an
# mmdet config instead, e.g. 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
# and set `num_classes` the same way.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/my_dataset_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
model = dict(
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(
        num_classes=4,  # = len(metainfo['classes'])
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        anchor_generator=dict(octave_base_scale=2)))
