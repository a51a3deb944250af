# TBD ablation: task-decoupled feature distillation (TFD) alone, no HD.
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='TBD', kappa=0.5,
         loss_hd=None,
         loss_tfd=dict(type='TFDLoss', task_weights='dynamic',
                           normalizer='joint', cls_mask_norm='max',
                           reg_mask='harmony', loss_weight=0.01),
         adapter=dict(type='ConvAdapter'),
         cls_loss_keys=('loss_cls', ), reg_loss_keys=('loss_bbox', )),
])
