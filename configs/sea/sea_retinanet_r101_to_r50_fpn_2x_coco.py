# SEA on COCO, 2x schedule: RetinaNet R-101 (multi-scale 3x) teacher ->
# RetinaNet R-50 student (the setting of the paper's 40.64 AP). Single-scale
# training as mmdet's packaged retinanet_r50_fpn_2x_coco, so the baseline is
# that config's.
_base_ = './sea_retinanet_r101_to_r50_fpn_1x_coco.py'

model = dict(student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py')

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
