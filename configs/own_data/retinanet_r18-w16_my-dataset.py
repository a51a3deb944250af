# Student for your own data set (docs/own_data.md): the teacher's detector
# with a narrow ResNet-18 (16 base channels) and a 64-channel FPN; same
# classes and anchors as the teacher.
_base_ = './retinanet_r18_my-dataset.py'
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    bbox_head=dict(
        in_channels=64,
        feat_channels=64,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)))
