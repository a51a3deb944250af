# ADL on COCO, 2x schedule: RetinaNet R-101 (2x) teacher -> R-50 student.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r101_fpn_2x_coco.pth',
    methods=[
        dict(
            type='ADL',
            # the authors' loss, as their released code computes it (their
            # paper writes w*KL, base='kl', which has twice the base gradient
            # at the same weight): -w*[a*q*log p + (1-a)*(1-q)*log(1-p)] with a
            # = 0.5, and the normaliser sum(q^1.8) over every anchor, ignored
            # ones included
            loss_adl=dict(
                type='ADLoss',
                beta=1.0,
                gamma=2.0,
                theta=1.8,
                base='bce',
                alpha=0.5,
                normaliser='all',
                temperature=1.0,
                loss_weight=1.0)),
    ])

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
