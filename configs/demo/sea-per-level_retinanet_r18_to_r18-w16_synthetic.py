# SEA, the other reading of the category anchors: one set per FPN level, a
# pixel relating to its own level's anchors, instead of anchors pooled over
# all levels (docs/methods/sea.md, "Category anchors").
_base_ = './sea_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='SEA', loss_sea=dict(
        type='SEALoss', temperature=0.1, distance='cosine',
        anchor_scope='image', background_anchor=True, balance=True,
        fg_weight=1.0, bg_weight=1.0, levels=None, use_masks=True,
        anchor_weight=0.0, anchor_levels='per_level',
        loss_weight=10.0)),
])
