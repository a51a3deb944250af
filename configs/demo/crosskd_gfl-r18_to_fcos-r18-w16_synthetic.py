# CrossKD across families: the FCOS R-18 w16 student's features after its
# tower layer 1 of 2, through a 1x1 adapter (64 -> 128 channels), run
# through the GFL R-18 teacher's last tower layer and predictors; the
# cross-head predictions mimic the teacher's (quality focal KD on the class
# scores, KL on the edge distributions). The GFL demo config's settings,
# balanced (GradientShareBalance, target 0.9).
_base_ = '../_base_/distiller_gfl-r18_to_fcos-r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='CrossKD', reused_teacher_head_idx=1,
             adapter=dict(type='ConvAdapter')),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
