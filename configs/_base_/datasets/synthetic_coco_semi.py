# Semi-supervised training data on the generated data set: the labeled part
# of the training split and the images whose labels were held out
# (tools/make_synthetic_coco.py --unlabeled-fraction 0.5), drawn 1:1 into
# every batch by mmdet's MultiSourceSampler. Unlabeled images are flagged by
# MarkUnlabeled; a distiller with online pseudo labels gives them the
# teacher's detections as ground truth.
_base_ = './synthetic_coco_detection.py'

labeled_dataset = dict(
    type={{_base_.dataset_type}},
    data_root={{_base_.data_root}},
    metainfo={{_base_.metainfo}},
    ann_file='annotations/instances_train_labeled.json',
    data_prefix=dict(img='train/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=4),
    pipeline={{_base_.train_pipeline}})
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='MarkUnlabeled'),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction', 'unlabeled'))
]
unlabeled_dataset = dict(
    type={{_base_.dataset_type}},
    data_root={{_base_.data_root}},
    metainfo={{_base_.metainfo}},
    ann_file='annotations/instances_train_unlabeled.json',
    data_prefix=dict(img='train/'),
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=unlabeled_pipeline)

train_dataloader = dict(
    batch_size=4,
    sampler=dict(
        _delete_=True,
        type='MultiSourceSampler',
        batch_size=4,
        source_ratio=[1, 1]),
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[labeled_dataset, unlabeled_dataset]))
