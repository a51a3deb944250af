# TBD (task-balanced distillation) on COCO: RetinaNet X-101-64x4d teacher ->
# RetinaNet R-50 student, 1x schedule (the paper reports 41.0 AP for the
# distilled R-50; its teacher and schedule are not known to us). Download the
# teacher from mmdet's model zoo (retinanet_x101-64x4d_fpn_1x_coco) and point
# teacher_ckpt at it; the student starts from ImageNet weights.
#
# Every option below is a reconstruction from the paper's abstract, at its
# default; see docs/methods/tbd.md.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    teacher='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/retinanet_x101-64x4d_fpn_1x_coco.pth',
    methods=[
        dict(
            type='TBD',
            kappa=0.5,
            loss_hd=dict(
                type='HDLoss',
                beta=2.0,
                temperature=1.0,
                positive_target='teacher',
                harmony_weight=True,
                loss_weight=1.0),
            loss_tfd=dict(
                type='TFDLoss',
                task_weights='dynamic',
                normalizer='joint',
                cls_mask_norm='max',
                reg_mask='harmony',
                loss_weight=1.0),
            adapter=dict(type='ConvAdapter'),
            cls_loss_keys=('loss_cls', ),
            reg_loss_keys=('loss_bbox', )),
    ])

# RetinaNet's own optimiser settings (8 GPUs x 2 images)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
