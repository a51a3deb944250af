# The GFL demo student (R-18 with 16 base channels, 64-channel FPN and
# head, 600 iterations) on the second generated data set: the demo
# student's changes to the teacher, applied to the teacher on that data set.
_base_ = './gfl_r18_synthetic-varied.py'
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    bbox_head=dict(
        in_channels=64,
        feat_channels=64,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)))

max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
