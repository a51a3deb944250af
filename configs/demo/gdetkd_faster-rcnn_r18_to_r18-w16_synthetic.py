# G-DetKD, homogeneous pipeline: Faster R-CNN R-18 teacher -> narrow R-18
# Faster R-CNN student, on the generated data set. Regions are the student's
# sampled R-CNN RoIs; SGFI, CKD, R-CNN logit KD and class-aware regression KD
# on them, and the student's R-CNN head starts from the teacher's where the
# shapes match (here only the two predictor biases: the student's FCs are
# narrower). SGFI and CKD see at most 16 regions per image (positives first):
# a cost cap of ours, not the paper's (see docs/methods/gdetkd.md, "Cost").
_base_ = '../_base_/distiller_faster-rcnn_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(
            type='GDetKD',
            # Demo weights, not the paper's: chosen so that each term starts
            # comparable to the student's own losses (see
            # docs/methods/gdetkd.md).
            loss_sgfi=dict(
                type='SGFILoss',
                embed_padding=0,
                embed_act_cfg=None,
                tau=1.0,
                learn_tau=True,
                loss_weight=0.05),
            loss_ckd=dict(
                type='CKDLoss',
                embed_channels=128,
                temperature=0.07,
                memory_batches=10,
                iou_threshold=0.5,
                include_positive=True,
                loss_weight=0.2),
            loss_cls=dict(
                type='RCNNLogitKDLoss', temperature=1.0, loss_weight=1.0),
            loss_reg=dict(type='ClassAwareRegKDLoss', loss_weight=1.0),
            head_transfer=True,
            max_regions_per_img=16),
    ])
