# TBD ablation: harmonious distillation (HD) alone, no feature term.
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='TBD', kappa=0.5,
         loss_hd=dict(type='HDLoss', beta=2.0, temperature=1.0,
                          positive_target='teacher', harmony_weight=True,
                          loss_weight=1.0),
         loss_tfd=None,
         adapter=dict(type='ConvAdapter'),
         cls_loss_keys=('loss_cls', ), reg_loss_keys=('loss_bbox', )),
])
