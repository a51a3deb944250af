# SAD with offline pseudo labels (the paper's way): the teacher labels the
# held-out images first,
#   python tools/pseudo_label.py configs/demo/retinanet_r18_synthetic.py \
#       work_dirs/demo/retinanet_r18_synthetic/teacher.pth \
#       data/synthetic_coco/annotations/instances_train_pseudo.json \
#       --ann-file data/synthetic_coco/annotations/instances_train_unlabeled.json \  # noqa: E501
#       --img-dir data/synthetic_coco/train --score-thr 0.5
# then the student trains on labeled and pseudo-labelled images mixed 1:1,
# with ADL on both.
_base_ = './sad-online_retinanet_r18_to_r18-w16_synthetic.py'

pseudo_labeled_dataset = dict(
    type={{_base_.dataset_type}},
    data_root={{_base_.data_root}},
    metainfo={{_base_.metainfo}},
    ann_file='annotations/instances_train_pseudo.json',
    data_prefix=dict(img='train/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=4),
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(
    dataset=dict(datasets=[{{_base_.labeled_dataset}},
                           pseudo_labeled_dataset]))
model = dict(methods=[
    dict(type='ADL', pseudo_label=None,
         loss_adl=dict(type='ADLoss', beta=1.0, gamma=2.0, theta=1.8,
                       base='kl', normaliser='kept')),
])
