# BCKD (binary classification and IoU-based localisation distillation) on
# the GFL demo pair, the family of the authors' code: their weights (1 and
# 4), balanced (GradientShareBalance, target 0.9, the one setting chosen on
# val for all demo methods). Not tuned on this pair.
_base_ = '../_base_/distiller_gfl_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[dict(type='BCKD')],
    balance=dict(type='GradientShareBalance', target=0.9))
