# SEA on COCO, 2x schedule: FCOS R-101 (multi-scale 2x) teacher -> FCOS R-50
# student trained like mmdet's fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco
# (multi-scale 640-800, 24 epochs), the setting of the paper's 43.06 AP.
_base_ = './sea_fcos_r101_to_r50_fpn_1x_coco.py'

model = dict(
    student='mmdet::fcos/fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco.py')

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
