# TBD on COCO, 2x schedule: RetinaNet R-101 (2x) teacher -> R-50 student.
_base_ = './tbd_retinanet_x101-64x4d_to_r50_fpn_2x_coco.py'

model = dict(
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r101_fpn_2x_coco.pth')
