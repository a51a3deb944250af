# CrossKD on COCO, 1x: GFL R-101 (multi-scale 2x) teacher -> GFL R-50
# student, the authors' setting (jbwang1997/CrossKD,
# configs/crosskd/crosskd_r50_gflv1_r101-2x-ms_fpn_1x_coco.py): tower layer
# 3 of 4 as the hand-over point; KDQualityFocalLoss (beta 1, weight 1) and
# the KL divergence of each box edge's distribution (T 1, summed over the
# bins, weight 4). Download the teacher from mmdet's model zoo
# (gfl_r101_fpn_ms-2x_coco) to teacher_ckpt.
# Published: 43.7 AP (student 40.2, teacher 44.9).
_base_ = '../_base_/distiller_gfl_r101-ms-2x_to_r50_1x_coco.py'

model = dict(methods=[
    dict(type='CrossKD', reused_teacher_head_idx=3,
         loss_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
         loss_reg=dict(type='DistributionKLLoss', temperature=1.0,
                       bin_reduction='sum', loss_weight=4.0)),
])
