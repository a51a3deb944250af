# SEA (pixel-to-category-anchor relation alignment) on the YOLOX demo pair:
# the RetinaNet demo config's loss (the COCO configs' weight 10), balanced
# (GradientShareBalance, target 0.9). The relations are computed in each
# model's own feature space, so no adapter. Not tuned on this pair.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[
        dict(type='SEA', loss_sea=dict(
            type='SEALoss', temperature=0.1, distance='cosine',
            anchor_scope='image', background_anchor=True, balance=True,
            fg_weight=1.0, bg_weight=1.0, levels=None, use_masks=True,
            loss_weight=10.0, anchor_weight=0.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
