# HMLD on COCO: DINO 4-scale R-50 teacher (mmdet's 12-epoch model,
# dino-4scale_r50_8xb2-12e_coco, 49.0 AP) -> DINO 4-scale R-18 student
# (students/dino-4scale_r18_8xb2-12e_coco.py), 12 epochs with DINO's own
# data pipeline and AdamW schedule (8 GPUs x 2 images). HMLD is
# DETRDistill's Hungarian-matching logits distillation with the authors'
# matching costs and loss weights (class 1, L1 5, GIoU 2), every decoder
# layer distilled from the teacher's layer of the same depth. The paper
# pairs R-101 -> R-50 Deformable DETR, Conditional DETR and AdaMixer;
# this pair is sea_kd's and has no published number
# (docs/methods/hmld.md). Download the teacher from mmdet's model zoo to
# teacher_ckpt; the student starts from ImageNet weights.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='Distiller',
    student='{{fileDirname}}/students/dino-4scale_r18_8xb2-12e_coco.py',
    teacher='mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    teacher_ckpt='checkpoints/dino-4scale_r50_8xb2-12e_coco.pth',
    methods=[dict(type='HMLD')])
