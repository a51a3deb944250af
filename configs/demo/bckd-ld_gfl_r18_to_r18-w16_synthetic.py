# BCKD + LD on the GFL demo pair: BCKD's two terms (class scores, decoded
# boxes by GIoU) with LD's two localization terms on the edge distributions
# (the LD demo config: main and VLR region, no logit KD, which BCKD's
# classification term replaces); balanced (GradientShareBalance, target
# 0.9). Not tuned.
_base_ = '../_base_/distiller_gfl_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[dict(type='BCKD'), dict(type='LD', loss_kd=None)],
    balance=dict(type='GradientShareBalance', target=0.9))
