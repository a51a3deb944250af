# Student of the KD-DETR COCO config: DAB-DETR with an ImageNet ResNet-18
# backbone (the authors' student; mmdet 3.3.0 ships DAB-DETR with R-50
# only), on the authors' batch of 8 GPUs x 8 images with lr 2e-4 (mmdet's
# R-50 recipe: 8 x 2 at 1e-4), 50 epochs, the drop at 40.
_base_ = 'mmdet::dab_detr/dab-detr_r50_8xb2-50e_coco.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[512]))
train_dataloader = dict(batch_size=8)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
auto_scale_lr = dict(base_batch_size=64)
