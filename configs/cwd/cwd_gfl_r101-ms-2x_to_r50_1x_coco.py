# CWD on COCO, 1x, on the dense head's class logits: GFL R-101 (multi-scale
# 2x) teacher -> GFL R-50 student. The setting of CWD's only published
# detection number, MMRazor 0.x
# configs/distill/cwd/cwd_cls_head_gfl_r101_fpn_gfl_r50_fpn_1x_coco.py
# (branch 0.x, 892af92c): channel-wise divergence of `bbox_head.gfl_cls`'s
# output (the class logits before the sigmoid) at every FPN level, tau 1,
# weight 5 per level, SGD lr 0.01; published 41.9 AP (student 40.2, teacher
# 44.7). Download the teacher from mmdet's model zoo
# (gfl_r101_fpn_ms-2x_coco) to teacher_ckpt.
_base_ = '../_base_/distiller_gfl_r101-ms-2x_to_r50_1x_coco.py'

model = dict(methods=[
    dict(type='CWD', loss_feat=None,
         loss_logits=dict(type='CWDLoss', tau=1.0, loss_weight=5.0)),
])
