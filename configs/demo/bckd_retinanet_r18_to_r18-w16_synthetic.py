# BCKD on the RetinaNet demo pair: the authors' weights (1 and 4, set for
# GFL; the source distils GFL only), the boxes decoded from each head's
# anchors and deltas, balanced (GradientShareBalance, target 0.9, the one
# setting chosen on val for all demo methods). Not tuned on this pair.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[dict(type='BCKD')],
    balance=dict(type='GradientShareBalance', target=0.9))
