# SEA, the other reading of the alignment: the squared difference of the
# teacher's and student's pixel-to-anchor similarity maps, instead of the
# KL of the softmaxed relations (docs/methods/sea.md, "Loss").
# The weight matches the default's term at the start: on one training
# batch of random-initialised students (tools/check_pair.py) the MSE term
# is 19.1 at weight 50 against 0.61 for the KL term, so 50 * 0.61 / 19.1.
_base_ = './sea_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(loss_sea=dict(relation_loss='mse', loss_weight=1.6))
