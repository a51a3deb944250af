# CrossKD on COCO, 1x: GFL R-101 (multi-scale 2x) teacher -> GFL R-50
# student, the authors' setting (jbwang1997/CrossKD,
# configs/crosskd/crosskd_r50_gflv1_r101-2x-ms_fpn_1x_coco.py): tower layer
# 3 of 4 as the hand-over point; KDQualityFocalLoss (beta 1, weight 1) and
# the KL divergence of each box edge's distribution (T 1, summed over the
# bins, weight 4). Download the teacher from mmdet's model zoo
# (gfl_r101_fpn_ms-2x_coco) to teacher_ckpt.
# Published: 43.7 AP (student 40.2, teacher 44.9).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    teacher='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt='checkpoints/gfl_r101_fpn_ms-2x_coco.pth',
    methods=[
        dict(type='CrossKD', reused_teacher_head_idx=3,
             loss_cls=dict(type='KDQualityFocalLoss', beta=1.0,
                           loss_weight=1.0),
             loss_reg=dict(type='DistributionKLLoss', temperature=1.0,
                           bin_reduction='sum', loss_weight=4.0)),
    ])
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
