# G-DetKD on COCO: Faster R-CNN R-50 teacher (mmdet's 2x model,
# faster-rcnn_r50_fpn_2x_coco, 38.4 AP; the paper's teacher schedule is not
# known to us) -> RetinaNet R-18 student (mmdet's retinanet_r18_fpn_1x_coco),
# 1x schedule; the paper reports 32.6 -> 36.3 AP. Heterogeneous pipeline: the
# student's predicted boxes, sampled by the teacher's R-CNN assigner and
# sampler (512 per image, 25 % positive), are the regions; SGFI and CKD.
# Download the teacher from mmdet's model zoo and point teacher_ckpt at it;
# the student starts from ImageNet weights. Loss weights are the third-party
# code's (SGFI 1.0, CKD 0.5); see docs/methods/gdetkd.md. CKD reads the
# student's region representation off its head's classification tower and
# compares it with the teacher's representations unprojected, as the
# third-party code does (the paper does not say; on the generated data the
# fused-RoI representation with a shared projection stayed at chance).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/faster-rcnn_r50_fpn_2x_coco.pth',
    methods=[
        dict(
            type='GDetKD',
            loss_sgfi=dict(
                type='SGFILoss',
                embed_padding=0,
                embed_act_cfg=None,
                tau=1.0,
                learn_tau=True,
                loss_weight=1.0),
            loss_ckd=dict(
                type='CKDLoss',
                embed_channels=128,
                temperature=0.07,
                memory_batches=10,
                iou_threshold=0.5,
                include_positive=True,
                key_space='teacher',
                loss_weight=0.5),
            # the student has no R-CNN head: no logit or regression KD
            loss_cls=None,
            loss_reg=None,
            dense_region_repr='head_tower',
            region_projector=dict(type='RegionProjector', pooled_size=1),
            proposal_cfg=dict(
                nms_pre=2000,
                score_thr=0.0,
                nms=dict(type='nms', iou_threshold=0.7),
                max_per_img=1000),
            region_sampling=None),
    ])  # the teacher's train_cfg.rcnn: 512 per image

# RetinaNet's own optimiser settings (8 GPUs x 2 images)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
