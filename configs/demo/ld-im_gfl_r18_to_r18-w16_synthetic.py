# LD on the GFL demo pair plus fine-grained feature imitation of the FPN
# levels (loss_im, MaskedFeatureMSELoss weight 2, as the authors' R-50
# config file sets it); a 1x1 adapter maps the student's 64 neck channels
# to the teacher's 128 (the authors' pairs share 256 and need none). The
# rest is the LD demo config: main and VLR LD, balanced, no logit KD.
_base_ = './ld_gfl_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='LD',
         loss_kd=None,
         loss_im=dict(type='MaskedFeatureMSELoss', loss_weight=2.0),
         adapter=dict(type='ConvAdapter')),
])
