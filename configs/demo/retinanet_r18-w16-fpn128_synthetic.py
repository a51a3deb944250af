# Demo student with the teacher's neck and head widths: the narrow ResNet-18
# (16 base channels) of retinanet_r18-w16_synthetic.py under the teacher's
# 128-channel FPN and head, as the inheriting strategy's published pairs
# share their 256-channel FPN and head (R-101 -> R-50): everything of the
# teacher outside the backbone but the FPN's lateral convolutions has the
# student's shape.
_base_ = './retinanet_r18-w16_synthetic.py'
model = dict(
    neck=dict(out_channels=128),
    bbox_head=dict(
        in_channels=128,
        feat_channels=128,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)))
