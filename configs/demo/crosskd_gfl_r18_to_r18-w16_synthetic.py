# CrossKD on the GFL demo pair: the student's features after tower layer 1
# of 2 run through the teacher's last tower layer and predictors (the
# authors hand over before the last of 4 layers); a 1x1 adapter maps the
# student's 64 head channels to the teacher's 128 (the authors' pairs share
# 256 and need none). The authors' GFL terms and weights, balanced
# (GradientShareBalance, target 0.9, the one setting chosen on val for all
# methods). Results: docs/results.md, "Balancing on the GFL pair".
_base_ = '../_base_/distiller_gfl_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='CrossKD', reused_teacher_head_idx=1,
             adapter=dict(type='ConvAdapter')),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
