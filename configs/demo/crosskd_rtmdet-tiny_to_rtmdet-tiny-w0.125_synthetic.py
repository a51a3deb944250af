# CrossKD on the RTMDet demo pair: each level's student features after
# tower layer 1 of 2 run through the teacher's last tower layer of that
# level and its predictors (RTMDet's separate-BN head has one tower per
# level); a 1x1 adapter maps the student's 32 head channels to the
# teacher's 96. The authors' terms for box-regressing heads:
# KDQualityFocalLoss and GIoU on the decoded boxes, weight 1 each; not
# tuned (CrossKD's source has no RTMDet configs).
_base_ = '../_base_/distiller_rtmdet-tiny_to_rtmdet-tiny-w0.125_synthetic.py'

model = dict(methods=[
    dict(type='CrossKD', reused_teacher_head_idx=1,
         adapter=dict(type='ConvAdapter')),
])
