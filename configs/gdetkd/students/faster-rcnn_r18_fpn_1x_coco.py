# Student of the G-DetKD COCO configs: Faster R-CNN with an ImageNet
# ResNet-18 backbone, 1x schedule (mmdet 3.3.0 ships R-18 Faster R-CNN only
# with the LSJ 200-epoch recipe).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
