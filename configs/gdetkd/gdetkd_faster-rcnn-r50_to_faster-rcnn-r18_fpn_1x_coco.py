# G-DetKD on COCO: Faster R-CNN R-50 teacher (mmdet's 2x model,
# faster-rcnn_r50_fpn_2x_coco, 38.4 AP; the paper's teacher schedule is not
# known to us) -> Faster R-CNN R-18 student
# (students/faster-rcnn_r18_fpn_1x_coco.py), 1x schedule; the paper reports
# 34.0 -> 37.9 AP. Homogeneous pipeline: the student's sampled R-CNN RoIs are
# the regions; SGFI, CKD, R-CNN logit KD, class-aware regression KD and head
# transfer. Download the teacher from mmdet's model zoo and point teacher_ckpt
# at it; the student starts from ImageNet weights. Loss weights are the
# third-party code's (SGFI 1.0, CKD 0.5); see docs/methods/gdetkd.md.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='{{fileDirname}}/students/faster-rcnn_r18_fpn_1x_coco.py',
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
                loss_weight=0.5),
            loss_cls=dict(
                type='RCNNLogitKDLoss', temperature=1.0, loss_weight=1.0),
            loss_reg=dict(type='ClassAwareRegKDLoss', loss_weight=1.0),
            head_transfer=True),
    ])

# Faster R-CNN's own optimiser settings (8 GPUs x 2 images, lr 0.02)
auto_scale_lr = dict(enable=False, base_batch_size=16)
