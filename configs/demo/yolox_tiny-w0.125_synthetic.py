# Demo YOLOX student: the YOLOX demo teacher's architecture a third as
# wide (widen 0.125 instead of 0.375, a 32-channel neck and head), same
# strides, classes and assignment; trained for the base schedule (600
# iterations).
_base_ = './yolox_tiny_synthetic.py'
model = dict(
    backbone=dict(widen_factor=0.125),
    neck=dict(in_channels=[32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))

max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
