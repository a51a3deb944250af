# CWD (channel-wise distillation of the FPN levels), RetinaNet R-18 teacher
# -> narrow R-18 student, on the generated data set. The authors' tau 1 and
# weight 10 (not tuned here) on all five levels; a 1x1 adapter maps the
# student's 64 channels to the teacher's 128 (the authors' pairs share 256
# channels and need none).
# Balanced (GradientShareBalance, target 0.9, the one setting chosen on val
# for all methods). Results: docs/results.md, "Balancing on test".
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='CWD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='CWDLoss', tau=1.0, loss_weight=10.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
