# SAD on COCO with online pseudo labels: train2017 (labeled) and
# unlabeled2017 (image_info_unlabeled2017.json) mixed 1:1; unlabeled images
# get the R-101 teacher's detections (score >= 0.5) as ground truth, and ADL
# applies to both. For the paper's offline pseudo labels, run
# tools/pseudo_label.py on unlabeled2017 and use the written json as a
# second, ordinary source instead (see docs/methods/adl.md).
_base_ = './adl_retinanet_r101_to_r50_fpn_1x_coco.py'

data_root = 'data/coco/'
labeled_dataset = dict(
    type='CocoDataset',
    data_root=data_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img='train2017/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline={{_base_.train_pipeline}})
unlabeled_dataset = dict(
    type='CocoDataset',
    data_root=data_root,
    ann_file='annotations/image_info_unlabeled2017.json',
    data_prefix=dict(img='unlabeled2017/'),
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(1333, 800), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='MarkUnlabeled'),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor', 'flip', 'flip_direction',
                       'unlabeled'))
    ])
train_dataloader = dict(
    batch_size=2,
    sampler=dict(
        _delete_=True,
        type='MultiSourceSampler',
        batch_size=2,
        source_ratio=[1, 1]),
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[labeled_dataset, unlabeled_dataset]))
model = dict(methods=[
    dict(type='ADL', pseudo_label=dict(score_thr=0.5),
         loss_adl=dict(type='ADLoss', beta=1.0, gamma=2.0, theta=1.8,
                       alpha=0.5, base='bce', normaliser='all',
                       temperature=1.0, loss_weight=1.0)),
])
