# Demo student: RetinaNet with a narrow ResNet-18 (16 base channels, 1/4 of
# the teacher's widths) and a 64-channel FPN. Same anchors and classes as the
# teacher.
_base_ = './retinanet_r18_synthetic.py'
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64))
