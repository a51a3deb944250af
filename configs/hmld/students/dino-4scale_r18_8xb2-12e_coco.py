# Student of the HMLD COCO config: DINO 4-scale with an ImageNet ResNet-18
# backbone, 12 epochs (mmdet 3.3.0 ships DINO only with R-50 and Swin-L).
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[128, 256, 512]))
