# G-DetKD on COCO: Faster R-CNN X-101-64x4d teacher (mmdet's multi-scale 3x
# model, faster-rcnn_x101-64x4d_fpn_ms-3x_coco; the paper's X-101 teacher was
# trained with InstaBoost, which mmdet 3.3.0 ships for Mask R-CNN only) ->
# Faster R-CNN R-50 student (mmdet's faster-rcnn_r50_fpn_1x_coco), 1x
# schedule; the paper reports 44.0 AP (with its own teacher). Homogeneous
# pipeline: the student's sampled R-CNN RoIs are the regions; SGFI, CKD, R-CNN
# logit KD, class-aware regression KD and head transfer. Download the teacher
# from mmdet's model zoo and point teacher_ckpt at it; the student starts from
# ImageNet weights. Loss weights are the third-party code's (SGFI 1.0, CKD
# 0.5); see docs/methods/gdetkd.md.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='GDetKDDistiller',
    student='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_x101-64x4d_fpn_ms-3x_coco.py',
    teacher_ckpt='checkpoints/faster-rcnn_x101-64x4d_fpn_ms-3x_coco.pth',
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
    loss_cls=dict(type='RCNNLogitKDLoss', temperature=1.0, loss_weight=1.0),
    loss_reg=dict(type='ClassAwareRegKDLoss', loss_weight=1.0),
    head_transfer=True)

# Faster R-CNN's own optimiser settings (8 GPUs x 2 images, lr 0.02)
auto_scale_lr = dict(enable=False, base_batch_size=16)
