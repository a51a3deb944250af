# G-DetKD on COCO for Cascade R-CNN: Cascade R-CNN X-101-64x4d teacher
# (mmdet's model zoo, cascade-rcnn_x101-64x4d_fpn_1x_coco, 44.7 AP) ->
# Cascade R-CNN R-50 student (cascade-rcnn_r50_fpn_1x_coco, 40.3 AP), 1x.
# The homogeneous pipeline and loss weights of the Faster R-CNN configs
# (SGFI 1.0, CKD 0.5, R-CNN logit KD and class-aware regression KD 1.0,
# head transfer); the paper has no Cascade R-CNN pair, so this is not a
# published setting. The regions are the student's sampled RoIs of the
# first stage; docs/methods/gdetkd.md says which stage each term reads.
# Download the teacher to teacher_ckpt; the student starts from ImageNet
# weights.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    teacher='mmdet::cascade_rcnn/cascade-rcnn_x101-64x4d_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/cascade-rcnn_x101-64x4d_fpn_1x_coco.pth',
    methods=[
        dict(type='GDetKD',
             loss_sgfi=dict(type='SGFILoss', embed_padding=0,
                            embed_act_cfg=None, tau=1.0, learn_tau=True,
                            loss_weight=1.0),
             loss_ckd=dict(type='CKDLoss', embed_channels=128,
                           temperature=0.07, memory_batches=10,
                           iou_threshold=0.5, include_positive=True,
                           loss_weight=0.5),
             loss_cls=dict(type='RCNNLogitKDLoss', temperature=1.0,
                           loss_weight=1.0),
             loss_reg=dict(type='ClassAwareRegKDLoss', loss_weight=1.0),
             head_transfer=True),
    ])
auto_scale_lr = dict(enable=False, base_batch_size=16)
