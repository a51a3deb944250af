# The RetinaNet demo teacher on the second generated data set, which differs
# from the demo's the way users' data differ: 20 classes instead of 6,
# 160-px images instead of 128, 4-12 objects per image instead of 1-6, of
# 8-48 px instead of 10-64 (made by the command in docs/results.md, "The
# second data set"). Only the data set and the class count change: the
# model, the anchors and the schedule are the demo's.
_base_ = './retinanet_r18_synthetic.py'

data_root = 'data/synthetic_coco_varied/'
# the generator's first 20 shapes
# (sea_kd.analysis.synthetic_coco.SHAPE_CLASSES)
metainfo = dict(classes=(
    'circle', 'square', 'triangle', 'ring', 'cross', 'star', 'pentagon',
    'hexagon', 'octagon', 'star4', 'star8', 'square_ring', 'triangle_ring',
    'semicircle', 'ellipse', 'rhombus', 'l_shape', 't_shape', 'arrow',
    'trapezoid'))
img_scale = (160, 160)

model = dict(bbox_head=dict(num_classes=20))

train_dataloader = dict(dataset=dict(
    data_root=data_root,
    metainfo=metainfo,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')
    ]))
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    metainfo=metainfo,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                        'scale_factor'))
    ]))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
