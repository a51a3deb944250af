# SAD as its authors ran it (Tangshitao/Semi-supervised-Adaptive-Distillation,
# detectron/configs/focal_distillation/retinanet_R-50-FPN_distillation.yaml):
# RetinaNet R-101 teacher -> R-50 student at 600 px (max side 1000), 270k
# iterations of 16 images, steps at 180k and 240k, ADL with the authors' loss.
# The published result of this setting: 34.3 -> 36.5 AP on COCO minival
# (teacher R-101 36.0) is SAD, not ADL alone.
#
# Data: two streams alternated batch by batch (AlternatingSourceSampler):
#   1. train2017 with its ground truth;
#   2. train2017 with its ground truth together with unlabeled2017 with the
#      teacher's detections as pseudo boxes, written once beforehand:
#   python tools/pseudo_label.py mmdet::retinanet/retinanet_r101_fpn_1x_coco.py \  # noqa: E501
#       checkpoints/retinanet_r101_fpn_1x_coco.pth \
#       data/coco/annotations/instances_unlabeled2017_pseudo-r101-600px.json \
#       --ann-file data/coco/annotations/image_info_unlabeled2017.json \
#       --img-dir data/coco/unlabeled2017 --score-thr 0.5 --device cuda \
#       --cfg-options "test_dataloader.dataset.pipeline.1.scale=(1000,600)"
# The authors' score threshold is not in their code; 0.5 is ours.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    teacher='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r101_fpn_1x_coco.pth',
    methods=[
        dict(
            type='ADL',
            # the authors' loss (DISTILLATION.LOSS_ALPHA 0.5,
            # ADAPTIVE_NORMALIZER, LOGITS_POWER 1.8, TEMPERATURE 1):
            # -w*[a*q*log p + (1-a)*(1-q)*log(1-p)], i.e. half the base
            # gradient of the paper's w*KL; the normaliser sums q^1.8 over
            # every anchor, ignored ones included
            loss_adl=dict(
                type='ADLoss',
                beta=1.0,
                gamma=2.0,
                theta=1.8,
                base='bce',
                alpha=0.5,
                normaliser='all',
                temperature=1.0,
                loss_weight=1.0),
            # offline pseudo labels arrive as ordinary annotations
            pseudo_label=None),
    ])

data_root = 'data/coco/'
img_scale = (1000, 600)  # Detectron's SCALES (600,), MAX_SIZE 1000
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train2017 = dict(
    type='CocoDataset',
    data_root=data_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img='train2017/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline=train_pipeline)
pseudo_labeled_unlabeled2017 = dict(
    type='CocoDataset',
    data_root=data_root,
    ann_file='annotations/instances_unlabeled2017_pseudo-r101-600px.json',
    data_prefix=dict(img='unlabeled2017/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    # batches of stream 1 (data set 0) alternate with batches of stream 2
    # (data sets 1 and 2 drawn together)
    sampler=dict(
        _delete_=True,
        type='AlternatingSourceSampler',
        batch_size=2,
        sources=[[0], [1, 2]]),
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[train2017, train2017, pseudo_labeled_unlabeled2017]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Detectron's schedule: 8 GPUs x 2 images, lr 0.01, 1000 warm-up iterations
max_iters = 270000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=30000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[180000, 240000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=30000))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=16)
