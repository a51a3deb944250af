# TBD on COCO: RetinaNet R-101 teacher -> RetinaNet R-50 student, 1x
# schedule. Download the teacher from mmdet's model zoo
# (retinanet_r101_fpn_1x_coco) and point teacher_ckpt at it.
_base_ = './tbd_retinanet_x101-64x4d_to_r50_fpn_1x_coco.py'

model = dict(
    teacher='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r101_fpn_1x_coco.pth')
