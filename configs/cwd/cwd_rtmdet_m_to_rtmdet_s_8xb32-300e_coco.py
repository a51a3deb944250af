# CWD on COCO for RTMDet: RTMDet-m teacher (mmdet's model zoo,
# rtmdet_m_8xb32-300e_coco) -> RTMDet-s student, mmdet's own RTMDet-s
# recipe (300 epochs, strong mosaic pipeline switched to the light one at
# epoch 280 by PipelineSwitchHook, EMA of the weights by EMAHook).
# Follows MMRazor's RTMDet distillation (mmyolo's
# kd_s_rtmdet_m_neck_300e_coco, 44.6 -> 45.7 AP): channel-wise divergence
# (tau 1, weight 1) on the three neck outputs, and no distillation in the
# last 20 epochs, on the light pipeline (DistillLossWeightHook stop_at=280).
# Differences: mmyolo taps neck.out_layers.i.conv (before BatchNorm and
# SiLU), sea_kd the neck outputs; sea_kd's CWD maps the student's 128
# channels to the teacher's 192 by a 1x1 ConvAdapter, where MMRazor uses a
# convolution with
# affine-free BatchNorm on the student and an affine-free BatchNorm on the
# teacher (docs/methods/cwd.md). EMAHook averages the student's and the
# adapters' weights; the teacher is outside the module tree and not copied
# into the average. Download the teacher to teacher_ckpt; the student
# starts from mmdet's ImageNet CSPNeXt-s weights.
_base_ = 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='Distiller',
    student='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
    teacher='mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py',
    teacher_ckpt='checkpoints/rtmdet_m_8xb32-300e_coco.pth',
    methods=[
        dict(type='CWD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='CWDLoss', tau=1.0, loss_weight=1.0)),
    ])
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
         update_buffers=True, priority=49),
    dict(type='PipelineSwitchHook', switch_epoch=280,
         switch_pipeline={{_base_.train_pipeline_stage2}}),
    dict(type='DistillLossWeightHook', by_epoch=True, stop_at=280),
]
