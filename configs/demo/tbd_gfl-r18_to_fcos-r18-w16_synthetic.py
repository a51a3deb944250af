# TBD across families: the GFL R-18 teacher's harmony score (its boxes
# formed from its edge distributions, as GFL predicts) weights the
# distillation of its class scores into the FCOS R-18 w16 student, with
# task-decoupled feature distillation; the RetinaNet demo config's terms and
# weights, balanced (GradientShareBalance, target 0.9).
_base_ = '../_base_/distiller_gfl-r18_to_fcos-r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='TBD', kappa=0.5,
             loss_hd=dict(type='HDLoss', beta=2.0, temperature=1.0,
                          positive_target='teacher', harmony_weight=True,
                          loss_weight=1.0),
             loss_tfd=dict(type='TFDLoss', task_weights='dynamic',
                           normalizer='joint', cls_mask_norm='max',
                           reg_mask='harmony', loss_weight=0.01),
             adapter=dict(type='ConvAdapter'),
             cls_loss_keys=('loss_cls', ), reg_loss_keys=('loss_bbox', )),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
