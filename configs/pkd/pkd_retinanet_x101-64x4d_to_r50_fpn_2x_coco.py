# PKD on COCO, 2x: RetinaNet X-101-64x4d teacher -> RetinaNet R-50 student,
# the authors' setting (their MMRazor config
# pkd_fpn_retina_x101_retina_r50_2x_coco): PKDLoss with weight 10 on the
# first four FPN levels (P3-P6), SGD lr 0.01. Download the teacher from
# mmdet's model zoo (retinanet_x101-64x4d_fpn_1x_coco) to teacher_ckpt.
# Published: 40.8 AP (student 37.4, teacher 41.0).
_base_ = './pkd_faster-rcnn_r101_to_r50_fpn_2x_coco.py'

model = dict(
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/retinanet_x101-64x4d_fpn_1x_coco.pth',
    methods=[
        dict(type='PKD', levels=[0, 1, 2, 3], adapter=None,
             loss_feat=dict(type='PKDLoss', loss_weight=10.0)),
    ])
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
