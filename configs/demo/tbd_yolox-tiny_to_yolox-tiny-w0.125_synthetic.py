# TBD (harmonious distillation of the class scores + task-decoupled feature
# distillation) on the YOLOX demo pair: the RTMDet demo config's terms
# (TFD weight 1 for the small normalised neck features), balanced
# (GradientShareBalance, target 0.9). The teacher's boxes are decoded by
# YOLOX's own decoding. Not tuned on this pair.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[
        dict(type='TBD', kappa=0.5,
             loss_hd=dict(type='HDLoss', beta=2.0, temperature=1.0,
                          positive_target='teacher', harmony_weight=True,
                          loss_weight=1.0),
             loss_tfd=dict(type='TFDLoss', task_weights='dynamic',
                           normalizer='joint', cls_mask_norm='max',
                           reg_mask='harmony', loss_weight=1.0),
             adapter=dict(type='ConvAdapter'),
             cls_loss_keys=('loss_cls', ), reg_loss_keys=('loss_bbox', )),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
