# SEA on COCO: FCOS R-101 teacher -> FCOS R-50 student, 1x schedule. mmdet
# 3.3.0 ships no 3x R-101 FCOS; the teacher is its strongest packaged R-101
# FCOS, multi-scale 2x (fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco):
# download it from mmdet's model zoo and point teacher_ckpt at it. Both
# models use caffe-style backbones, so they share the data preprocessor.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    teacher='mmdet::fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    teacher_ckpt='checkpoints/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco'
    '.pth',
    methods=[
        dict(
            type='SEA',
            loss_sea=dict(
                type='SEALoss',
                temperature=0.1,
                distance='cosine',
                anchor_scope='image',
                background_anchor=True,
                balance=True,
                fg_weight=1.0,
                bg_weight=1.0,
                levels=None,  # all five FPN levels, P3-P7
                # the COCO detection pipeline loads no masks: boxes are used
                use_masks=True,
                # not from the paper; see docs/methods/sea.md
                loss_weight=10.0,
                anchor_weight=0.0)),
    ])

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
