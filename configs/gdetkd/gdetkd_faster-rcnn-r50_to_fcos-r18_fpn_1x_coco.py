# G-DetKD on COCO: Faster R-CNN R-50 teacher (mmdet's 2x model,
# faster-rcnn_r50_fpn_2x_coco, 38.4 AP; the paper's teacher schedule is not
# known to us) -> FCOS R-18 student (students/fcos_r18_fpn_gn-head_1x_coco.py,
# pytorch style), 1x schedule; the paper reports 30.3 -> 35.6 AP.
# Heterogeneous pipeline: the student's predicted boxes, sampled by the
# teacher's R-CNN assigner and sampler (512 per image, 25 % positive), are the
# regions; SGFI and CKD. Download the teacher from mmdet's model zoo and point
# teacher_ckpt at it; the student starts from ImageNet weights. Loss weights
# are the third-party code's (SGFI 1.0, CKD 0.5); see docs/methods/gdetkd.md.
_base_ = './gdetkd_faster-rcnn-r50_to_retinanet-r18_fpn_1x_coco.py'

# the same teacher, losses and regions as the RetinaNet config; only the
# student and its optimiser settings change
model = dict(
    student='{{fileDirname}}/students/fcos_r18_fpn_gn-head_1x_coco.py')

# FCOS's own optimiser settings (8 GPUs x 2 images)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)
