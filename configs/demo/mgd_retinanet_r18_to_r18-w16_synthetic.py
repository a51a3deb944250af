# MGD (masked generative distillation of the FPN levels), RetinaNet R-18
# teacher -> narrow R-18 student, on the generated data set, mask ratio 0.65
# on all five levels (the authors'); a 1x1 alignment maps the student's 64
# channels to the teacher's 128, as in the authors' code. The authors'
# alpha 2e-5, balanced (GradientShareBalance, target 0.9, the one setting
# chosen on val for all methods). Results: docs/results.md, "Balancing on
# test".
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[dict(type='MGD', alpha=2e-5, mask_ratio=0.65)],
    balance=dict(type='GradientShareBalance', target=0.9))
