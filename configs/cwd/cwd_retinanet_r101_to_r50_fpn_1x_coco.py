# CWD on COCO, 1x: RetinaNet R-101 teacher -> RetinaNet R-50 student, as
# MMRazor's CWD config (cwd_fpn_retina_r101_retina_r50_1x_coco): CWDLoss with
# tau 1 and weight 10 on all five FPN levels (P3-P7), SGD lr 0.01. Download
# the teacher from mmdet's model zoo (retinanet_r101_fpn_2x_coco) to
# teacher_ckpt. No published AP for this setting (see docs/methods/cwd.md).
_base_ = './cwd_faster-rcnn_r101_to_r50_fpn_1x_coco.py'

model = dict(
    student='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r101_fpn_2x_coco.pth')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
