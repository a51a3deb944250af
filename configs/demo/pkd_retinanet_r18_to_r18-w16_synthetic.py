# PKD (Pearson-correlation imitation of the FPN levels), RetinaNet R-18
# teacher -> narrow R-18 student, on the generated data set. The authors'
# weight for Faster R-CNN (6, not tuned here) on all five levels; the
# necks differ in channels (128 vs 64), so a 1x1 adapter maps the student's
# (the authors' pairs share 256 channels and need none).
# Balanced (GradientShareBalance, target 0.9, the one setting chosen on val
# for all methods). Results: docs/results.md, "Balancing on test".
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='PKD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
