# BCKD + PKD on the GFL demo pair: the methods and settings of
# bckd-pkd_retinanet_r18_to_r18-w16_synthetic.py on the family of BCKD's
# code. Not tuned.
_base_ = '../_base_/distiller_gfl_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='BCKD'),
        dict(type='PKD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
