# LD on COCO, 1x: GFL R-101 (multi-scale 2x) teacher -> GFL R-50 student,
# "Main KD + Main LD + VLR LD", the terms of the authors' released results
# (HikariTJU/LD, README; configs/ld/ld_r50_gflv1_r101_fpn_coco_1x.py):
# KL of the edge distributions on the main region (T 10, weight 0.25) and on
# the valuable localization region (T 10, weight 0.25), logit KD on the main
# region (T 2, weight 10). Their R-50 config also sets a feature-imitation
# term (loss_im), which sea_kd does not implement (docs/methods/ld.md).
# Download the teacher from mmdet's model zoo (gfl_r101_fpn_ms-2x_coco) to
# teacher_ckpt. Published: 42.1 AP (student 40.1).
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
    methods=[dict(type='LD')])
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
