# SEA, the other reading of the category anchors: one set per FPN level, a
# pixel relating to its own level's anchors, instead of anchors pooled over
# all levels (docs/methods/sea.md, "Category anchors").
_base_ = './sea_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(loss_sea=dict(anchor_levels='per_level'))
