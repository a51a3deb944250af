# TBD, the other reading of the harmony score: agreement of the teacher's
# class score and IoU, HS = 1 - |s - u|, instead of the product
# s^kappa * u^(1 - kappa) (docs/methods/tbd.md, "Harmony score").
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='TBD', kappa=0.5, harmony_form='agreement',
         loss_hd=dict(type='HDLoss', beta=2.0, temperature=1.0,
                          positive_target='teacher', harmony_weight=True,
                          loss_weight=1.0),
         loss_tfd=dict(type='TFDLoss', task_weights='dynamic',
                           normalizer='joint', cls_mask_norm='max',
                           reg_mask='harmony', loss_weight=0.01),
         adapter=dict(type='ConvAdapter'),
         cls_loss_keys=('loss_cls', ), reg_loss_keys=('loss_bbox', )),
])
