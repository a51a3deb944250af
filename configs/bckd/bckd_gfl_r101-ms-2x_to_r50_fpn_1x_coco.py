# BCKD on COCO, 1x: GFL R-101 (multi-scale 2x) teacher -> GFL R-50 student,
# the authors' headline setting (TinyTigerPan/BCKD@121c9aa,
# configs/bckd/bckd_r50_gflv1_r101_fpn_coco_1x.py): binary classification
# distillation (weight 1) and IoU-based localisation distillation (GIoU,
# weight 4) at every position the student's label weights keep, on the
# levels with a positive; the student's own GFL losses unchanged; 8 GPUs x
# 2 images, SGD lr 0.01, mmdet's 1x schedule, as theirs.
# Download the teacher from mmdet's model zoo (gfl_r101_fpn_ms-2x_coco) to
# teacher_ckpt. Published: 43.2 AP (student 40.1).
_base_ = '../_base_/distiller_gfl_r101-ms-2x_to_r50_1x_coco.py'

model = dict(methods=[dict(type='BCKD')])
