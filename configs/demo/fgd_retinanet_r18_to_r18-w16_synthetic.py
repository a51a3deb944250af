# FGD (focal and global distillation of the FPN levels), RetinaNet R-18
# teacher -> narrow R-18 student, on the generated data set, all five
# levels, temperature 0.5 (the authors'); a 1x1 alignment maps the
# student's 64 channels to the teacher's 128, as in the authors' code.
# The authors' RetinaNet weights (alpha 1e-3, beta 5e-4, gamma 5e-4,
# lambda 5e-6) were set for COCO's 256-channel features; the demo
# teacher's features are far larger (the foreground term starts at 608 on
# one batch, tools/check_pair.py), so the three terms that grow with the
# features' square (alpha, beta, lambda) are divided by 200, which brings
# the sum near the FI demo's first value; gamma (attention maps, whose
# scale does not depend on the features') is the authors'. Not tuned.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='FGD', temperature=0.5, alpha_fg=5e-6, beta_bg=2.5e-6,
         gamma_attention=5e-4, lambda_global=2.5e-8),
])
