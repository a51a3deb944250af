# Student of the G-DetKD COCO configs: FCOS R-50 with a pytorch-style
# (torchvision) backbone and input normalisation. mmdet's FCOS R-50 is
# caffe-style (BGR, no std); this student is set up like the pytorch-style
# Faster R-CNN teachers, so that both start from the same kind of ImageNet
# weights (the distiller would convert the teacher's inputs either way).
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        style='pytorch',
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet50')))
