# G-DetKD, heterogeneous pipeline: Faster R-CNN R-18 teacher -> narrow R-18
# RetinaNet student, on the generated data set. Regions are the student's
# own predicted boxes of the step, sampled with the teacher's R-CNN assigner
# and sampler (the demo teacher samples 128 regions per image, 25 %
# positive), of which at most 16 per image (positives first) are kept; SGFI
# and CKD on them. Both models normalise images alike (pytorch-style mean
# and std).
#
# Cost caps of ours, not the paper's (see docs/methods/gdetkd.md, "Cost"):
# the paper's proposals are the top 2000 boxes per level and at most 1000
# per image after NMS (the default proposal_cfg, used by the COCO configs);
# here 300 and 300, and max_regions_per_img=16.
_base_ = [
    '../_base_/datasets/synthetic_coco_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='GDetKDDistiller',
    student='{{fileDirname}}/retinanet_r18-w16_synthetic.py',
    teacher='{{fileDirname}}/faster-rcnn_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/faster-rcnn_r18_synthetic/teacher.pth',
    # Demo weights, not the paper's: chosen so that each term starts
    # comparable to the student's own losses (see docs/methods/gdetkd.md).
    loss_sgfi=dict(
        type='SGFILoss',
        embed_padding=0,
        embed_act_cfg=None,
        tau=1.0,
        learn_tau=True,
        loss_weight=0.1),
    loss_ckd=dict(
        type='CKDLoss',
        embed_channels=128,
        temperature=0.07,
        memory_batches=10,
        iou_threshold=0.5,
        include_positive=True,
        loss_weight=0.1),
    # the student has no R-CNN head: no logit or regression KD
    loss_cls=None,
    loss_reg=None,
    region_projector=dict(type='RegionProjector', pooled_size=2),
    proposal_cfg=dict(
        nms_pre=300,
        score_thr=0.0,
        nms=dict(type='nms', iou_threshold=0.7),
        max_per_img=300),
    region_sampling=None,  # the teacher's train_cfg.rcnn assigner/sampler
    max_regions_per_img=16)
