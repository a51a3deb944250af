# Demo DINO student: the DINO demo teacher with a ResNet-18 a quarter as
# wide (16 stem channels, as the other demo students), one encoder layer
# instead of two, the teacher's three decoder layers, and feed-forward 256
# instead of 1024 (the 256-dimensional queries are mmdet's DINO's own);
# trained for the base schedule (600 iterations).
_base_ = './dino_r18_synthetic.py'
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[32, 64, 128]),
    encoder=dict(
        num_layers=1,
        layer_cfg=dict(ffn_cfg=dict(feedforward_channels=256))),
    decoder=dict(layer_cfg=dict(ffn_cfg=dict(feedforward_channels=256))))

max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
