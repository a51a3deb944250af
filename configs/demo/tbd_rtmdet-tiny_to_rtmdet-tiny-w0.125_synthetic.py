# TBD (harmonious distillation of the class scores + task-decoupled feature
# distillation) on the RTMDet demo pair, with the RetinaNet demo's choices
# (configs/demo/tbd_retinanet_...), except the TFD weight: 1 instead of
# 0.01, for RTMDet's small neck features (as for FI on this pair). The
# harmony score's IoU is the teacher's decoded box against the box RTMDet's
# assigner gave the position. Not tuned.
_base_ = '../_base_/distiller_rtmdet-tiny_to_rtmdet-tiny-w0.125_synthetic.py'

model = dict(methods=[
    dict(type='TBD',
         kappa=0.5,
         loss_hd=dict(type='HDLoss', beta=2.0, temperature=1.0,
                      positive_target='teacher', harmony_weight=True,
                      loss_weight=1.0),
         loss_tfd=dict(type='TFDLoss', task_weights='dynamic',
                       normalizer='joint', cls_mask_norm='max',
                       reg_mask='harmony', loss_weight=1.0),
         adapter=dict(type='ConvAdapter'),
         cls_loss_keys=('loss_cls', ),
         reg_loss_keys=('loss_bbox', )),
])
