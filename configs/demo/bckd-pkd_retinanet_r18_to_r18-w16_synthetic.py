# BCKD + PKD on the RetinaNet demo pair, one distiller with two methods (the
# combination BCKD's users ask for): BCKD with its authors' weights and PKD
# on all five FPN levels (weight 6, the PKD demo config's), a 1x1 adapter
# for the narrower student FPN; balanced (GradientShareBalance, target 0.9,
# the one setting of every demo config). Not tuned.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='BCKD'),
        dict(type='PKD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
