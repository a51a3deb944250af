# SAD with online pseudo labels: ADL on labeled and unlabeled images mixed
# 1:1; unlabeled images get the teacher's detections (score >= 0.5) from the
# same step's teacher forward as ground truth for the student's own losses.
# Needs the labeled/unlabeled split of the generated data
# (python tools/make_synthetic_coco.py --unlabeled-fraction 0.5).
_base_ = [
    '../_base_/datasets/synthetic_coco_semi.py',
    '../_base_/schedules/synthetic_iters.py',
    '../_base_/synthetic_runtime.py',
]
custom_imports = dict(imports=['sea_kd'], allow_failed_imports=False)

model = dict(
    type='Distiller',
    student='{{fileDirname}}/retinanet_r18-w16_synthetic.py',
    teacher='{{fileDirname}}/retinanet_r18_synthetic.py',
    teacher_ckpt='work_dirs/demo/retinanet_r18_synthetic/teacher.pth',
    methods=[
        dict(
            type='ADL',
            loss_adl=dict(type='ADLoss', beta=1.0, gamma=2.0, theta=1.8,
                          base='kl', normaliser='kept'),
            pseudo_label=dict(score_thr=0.5)),
    ])
