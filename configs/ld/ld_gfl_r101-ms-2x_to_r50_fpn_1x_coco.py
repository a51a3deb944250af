# LD on COCO, 1x: GFL R-101 (multi-scale 2x) teacher -> GFL R-50 student,
# "Main KD + Main LD + VLR LD", the terms of the authors' released results
# (HikariTJU/LD, README; configs/ld/ld_r50_gflv1_r101_fpn_coco_1x.py):
# KL of the edge distributions on the main region (T 10, weight 0.25) and on
# the valuable localization region (T 10, weight 0.25), logit KD on the main
# region (T 2, weight 10). Their R-50 config also sets a feature-imitation
# term (loss_im), which sea_kd does not implement (docs/methods/ld.md).
# Download the teacher from mmdet's model zoo (gfl_r101_fpn_ms-2x_coco) to
# teacher_ckpt. Published: 42.1 AP (student 40.1).
_base_ = '../_base_/distiller_gfl_r101-ms-2x_to_r50_1x_coco.py'

model = dict(methods=[dict(type='LD')])
