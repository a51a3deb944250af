# The COCO GFL pair of LD and CrossKD in a Distiller: GFL R-101 (multi-scale
# 2x, mmdet's model zoo; download its checkpoint to teacher_ckpt) -> GFL R-50
# (ImageNet start), 1x, SGD lr 0.01 for 8 GPUs x 2 images. A config
# inheriting it sets only `model.methods`.
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
    methods=[])
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
