# CrossKD + PKD on COCO, 1x, one distiller with two methods: the CrossKD
# config of this pair plus PKD on all five FPN levels, weight 6, as in the
# authors' configs/crosskd+pkd/crosskd+pkd_r50_gflv1_r101-2x-ms_fpn_1x_coco.py.
# Published: 43.9 AP (student 40.2, teacher 44.9).
_base_ = './crosskd_gfl_r101-ms-2x_to_r50_fpn_1x_coco.py'

model = dict(methods=[
    dict(type='CrossKD', reused_teacher_head_idx=3,
         loss_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
         loss_reg=dict(type='DistributionKLLoss', temperature=1.0,
                       bin_reduction='sum', loss_weight=4.0)),
    dict(type='PKD', adapter=None,
         loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
])
