# G-DetKD on COCO: Faster R-CNN X-101-64x4d teacher (mmdet's multi-scale 3x
# model, faster-rcnn_x101-64x4d_fpn_ms-3x_coco; the paper's X-101 teacher was
# trained with InstaBoost, which mmdet 3.3.0 ships for Mask R-CNN only) ->
# Faster R-CNN R-50 student (mmdet's faster-rcnn_r50_fpn_1x_coco), 1x
# schedule; the paper reports 44.0 AP (with its own teacher). Homogeneous
# pipeline: the student's sampled R-CNN RoIs are the regions; SGFI, CKD, R-CNN
# logit KD, class-aware regression KD and head transfer. Download the teacher
# from mmdet's model zoo and point teacher_ckpt at it; the student starts from
# ImageNet weights. Loss weights are the third-party code's (SGFI 1.0, CKD
# 0.5); see docs/methods/gdetkd.md.
_base_ = './gdetkd_faster-rcnn-r50_to_faster-rcnn-r18_fpn_1x_coco.py'

# the same losses, regions and optimiser settings as the R-50 -> R-18 config;
# only the pair changes
model = dict(
    student='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_x101-64x4d_fpn_ms-3x_coco.py',
    teacher_ckpt='checkpoints/faster-rcnn_x101-64x4d_fpn_ms-3x_coco.pth')
