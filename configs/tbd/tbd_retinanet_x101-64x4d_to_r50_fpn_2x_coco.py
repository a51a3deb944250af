# TBD on COCO, 2x schedule: RetinaNet X-101-64x4d (2x) teacher -> R-50.
_base_ = './tbd_retinanet_x101-64x4d_to_r50_fpn_1x_coco.py'

model = dict(
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_x101-64x4d_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/retinanet_x101-64x4d_fpn_2x_coco.pth')

# mmdet's 2x schedule (24 epochs, steps at 16 and 22)
max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[16, 22], gamma=0.1)
]
