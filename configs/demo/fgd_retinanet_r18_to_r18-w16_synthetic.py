# FGD (focal and global distillation of the FPN levels), RetinaNet R-18
# teacher -> narrow R-18 student, on the generated data set, all five
# levels; a 1x1 alignment maps the student's 64 channels to the teacher's
# 128, as in the authors' code. The authors' RetinaNet weights (alpha 1e-3,
# beta 5e-4, gamma 5e-4, lambda 5e-6) and temperature 0.5, with two
# changes (docs/methods/fgd.md, "The temperature and the features' scale"):
# - the temperature is relative to each map's mean |F| (chosen on val):
#   the demo teacher's features are large (mean |F| 1.7-29 by level), and
#   an absolute 0.5 puts 90 % of the channel attention on one of 128
#   channels;
# - the terms are balanced (GradientShareBalance, target 0.9, the setting
#   chosen once for all methods) instead of scaled by hand to the features.
# Results: docs/results.md and docs/methods/fgd.md.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='FGD', temperature=0.5, relative_temperature=True,
             alpha_fg=1e-3, beta_bg=5e-4, gamma_attention=5e-4,
             lambda_global=5e-6),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
