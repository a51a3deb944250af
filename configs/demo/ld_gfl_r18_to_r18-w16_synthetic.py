# LD (localization distillation: main region, valuable localization region
# and main-region logit KD), GFL R-18 teacher -> narrow GFL R-18 student, on
# the generated data set, with the authors' terms and weights (not tuned).
_base_ = '../_base_/distiller_gfl_r18_to_r18-w16_synthetic.py'

model = dict(methods=[dict(type='LD')])
