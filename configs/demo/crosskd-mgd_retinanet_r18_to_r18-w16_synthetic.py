# CrossKD + MGD on the RetinaNet demo pair: the CrossKD demo config's
# terms with MGD's (the authors' alpha 2e-5, mask ratio 0.65, all five
# levels), one of the two feature baselines with the largest gain on this
# pair (within noise of CWD's); balanced (GradientShareBalance, target
# 0.9).
# Not tuned.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='CrossKD', reused_teacher_head_idx=1,
             adapter=dict(type='ConvAdapter')),
        dict(type='MGD', alpha=2e-5, mask_ratio=0.65),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
