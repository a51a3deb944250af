# FGD on the RetinaNet demo pair with the student of the teacher's neck and
# head widths (no adapter or alignment needed): the same method settings as
# fgd_retinanet_r18_to_r18-w16_synthetic.py, neck and head initialised as
# usual; fgd-inherit_... starts its neck and head from the teacher's.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16-fpn128_synthetic.py'

model = dict(
    methods=[
        dict(type='FGD', temperature=0.5, relative_temperature=True,
             alpha_fg=1e-3, beta_bg=5e-4, gamma_attention=5e-4,
             lambda_global=5e-6),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
