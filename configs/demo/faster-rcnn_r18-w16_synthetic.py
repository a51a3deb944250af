# Demo student: Faster R-CNN with a narrow ResNet-18 (16 base channels) and a
# 64-channel FPN; same classes as the teacher.
_base_ = './faster-rcnn_r18_synthetic.py'
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=128)))
