# Demo teacher: Faster R-CNN with a ResNet-18 (64 base channels) and a
# 128-channel FPN, trained from scratch on the generated data set.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/synthetic_coco_detection.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
model = dict(
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # objects are 10-64 px on 128-px images: smaller anchors than COCO's
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=6)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100)))
