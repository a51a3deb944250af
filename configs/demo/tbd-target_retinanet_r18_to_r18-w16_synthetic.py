# TBD, the other reading of how HD uses the harmony score: the soft target
# of the ground-truth class at positives (the teacher's probability
# elsewhere), instead of a per-location weight of the distillation of the
# teacher's probabilities (docs/methods/tbd.md, "HD"). It was the default
# until the paired comparison on val chose the weight reading.
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='TBD', kappa=0.5,
         loss_hd=dict(type='HDLoss', beta=2.0, temperature=1.0,
                          positive_target='harmony', harmony_weight=False,
                          loss_weight=1.0),
         loss_tfd=dict(type='TFDLoss', task_weights='dynamic',
                           normalizer='joint', cls_mask_norm='max',
                           reg_mask='harmony', loss_weight=0.01),
         adapter=dict(type='ConvAdapter'),
         cls_loss_keys=('loss_cls', ), reg_loss_keys=('loss_bbox', )),
])
