# Student of the G-DetKD COCO configs: FCOS with an ImageNet ResNet-18
# (pytorch style, like the Faster R-CNN teacher's input normalisation).
_base_ = './fcos_r50_fpn_gn-head_1x_coco.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
