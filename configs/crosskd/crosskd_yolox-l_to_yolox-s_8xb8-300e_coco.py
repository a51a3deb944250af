# CrossKD on COCO for YOLOX: YOLOX-l teacher (mmdet's model zoo,
# yolox_l_8xb8-300e_coco, 49.4 AP) -> YOLOX-s student, mmdet's own YOLOX-s
# recipe (300 epochs; mosaic, random affine and mix-up switched off and the
# L1 loss switched on for the last 15 epochs by YOLOXModeSwitchHook, which
# reaches the student through `Distiller.detector`; EMA of the weights).
# CrossKD's source has no YOLOX config: this is the natural setting, not a
# published one. YOLOX's towers have two layers, so the student's features
# after tower layer 1 run through the teacher's last tower layer and
# predictors; a 1x1 adapter maps the student's 128 head channels to the
# teacher's 256. The authors' terms for box-regressing heads
# (KDQualityFocalLoss, GIoU on the decoded boxes, weight 1 each). No
# distillation in the last 15 epochs (DistillLossWeightHook stop_at=285),
# as the light pipeline of MMRazor's RTMDet recipe. Download the teacher to
# teacher_ckpt; the student starts from scratch, as in mmdet's recipe.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='Distiller',
    student='mmdet::yolox/yolox_s_8xb8-300e_coco.py',
    teacher='mmdet::yolox/yolox_l_8xb8-300e_coco.py',
    teacher_ckpt='checkpoints/yolox_l_8xb8-300e_coco.pth',
    methods=[
        dict(type='CrossKD', reused_teacher_head_idx=1,
             adapter=dict(type='ConvAdapter'),
             loss_cls=dict(type='KDQualityFocalLoss', beta=1.0,
                           loss_weight=1.0),
             loss_reg=dict(type='GIoULoss', loss_weight=1.0)),
    ])
custom_hooks = [
    dict(type='YOLOXModeSwitchHook', num_last_epochs=15, priority=48),
    dict(type='SyncNormHook', priority=48),
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001,
         update_buffers=True, priority=49),
    dict(type='DistillLossWeightHook', by_epoch=True, stop_at=285),
]
