# CrossKD on the YOLOX demo pair: the student's features after tower layer
# 1 of 2 (YOLOX has one class and one box tower per level), through a 1x1
# adapter (32 -> 96 channels), run through the teacher's last tower layer
# and predictors; the authors' terms for box-regressing heads, balanced
# (GradientShareBalance, target 0.9). CrossKD's source has no YOLOX config;
# not tuned.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[
        dict(type='CrossKD', reused_teacher_head_idx=1,
             adapter=dict(type='ConvAdapter')),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
