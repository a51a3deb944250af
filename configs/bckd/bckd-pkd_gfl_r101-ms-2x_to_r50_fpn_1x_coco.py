# BCKD + PKD on COCO, 1x, one distiller with two methods: the BCKD config
# of this pair plus PKD on all five FPN levels, weight 6 (as the CrossKD
# authors combine PKD with their GFL config; the two models share 256 FPN
# channels, so no adapter). Our combination: no published number.
_base_ = './bckd_gfl_r101-ms-2x_to_r50_fpn_1x_coco.py'

model = dict(methods=[
    dict(type='BCKD'),
    dict(type='PKD', adapter=None,
         loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
])
