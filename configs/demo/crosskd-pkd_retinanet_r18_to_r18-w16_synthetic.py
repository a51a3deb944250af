# CrossKD + PKD as one distiller with two methods, on the RetinaNet demo
# pair: the CrossKD demo config plus PKD on all five FPN levels with the
# authors' RetinaNet weight for the combination (2), through a 1x1 adapter
# (64 -> 128 channels). Not tuned.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='CrossKD', reused_teacher_head_idx=1,
         adapter=dict(type='ConvAdapter')),
    dict(type='PKD', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='PKDLoss', loss_weight=2.0)),
])
