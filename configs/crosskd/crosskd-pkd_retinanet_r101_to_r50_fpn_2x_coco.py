# CrossKD + PKD on COCO, 2x, one distiller with two methods: the CrossKD
# config of this pair plus PKD on all five FPN levels, weight 2, as in the
# authors' configs/crosskd+pkd/crosskd+pkd_r50_retinanet_r101_fpn_2x_coco.py.
# Published: 39.8 AP (student 37.4, teacher 38.9).
_base_ = './crosskd_retinanet_r101_to_r50_fpn_2x_coco.py'

model = dict(methods=[
    dict(type='CrossKD', reused_teacher_head_idx=3,
         loss_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
         loss_reg=dict(type='GIoULoss', loss_weight=1.0)),
    dict(type='PKD', adapter=None,
         loss_feat=dict(type='PKDLoss', loss_weight=2.0)),
])
