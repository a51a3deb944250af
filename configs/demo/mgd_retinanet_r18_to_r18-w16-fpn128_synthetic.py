# MGD on the RetinaNet demo pair with the student of the teacher's neck and
# head widths (no adapter or alignment needed): the same method settings as
# mgd_retinanet_r18_to_r18-w16_synthetic.py, neck and head initialised as
# usual; mgd-inherit_... starts its neck and head from the teacher's.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16-fpn128_synthetic.py'

model = dict(
    methods=[dict(type='MGD', alpha=2e-5, mask_ratio=0.65)],
    balance=dict(type='GradientShareBalance', target=0.9))
