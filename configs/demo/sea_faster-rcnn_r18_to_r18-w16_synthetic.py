# SEA (semantic-aware alignment of pixel-to-category-anchor relations),
# Faster R-CNN R-18 teacher -> narrow R-18 student, on the generated data set.
# The relations are computed in each model's own feature space, so the
# 128-channel teacher FPN and the 64-channel student FPN need no adapter.
_base_ = '../_base_/distiller_faster-rcnn_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(
            type='SEA',
            loss_sea=dict(
                type='SEALoss',
                temperature=0.1,
                distance='cosine',
                anchor_scope='image',
                background_anchor=True,
                balance=True,
                fg_weight=1.0,
                bg_weight=1.0,
                levels=None,  # all five FPN levels, P2-P6
                # the detection data has no masks: boxes are used
                use_masks=True,
                # with temperature 0.1 the tau^2-scaled term is small (about
                # 0.01 at the start); loss_weight=10 gives SEA a neck gradient
                # 0.5 to 0.6 times that of the detection losses at the start
                # (measured on this pair; not from the paper)
                loss_weight=10.0,
                anchor_weight=0.0)),
    ])
