# ADL (adaptive distillation loss on the dense class logits), RetinaNet R-18
# teacher -> narrow R-18 student, on the generated data set. Teacher and
# student share the anchor layout, as ADL matches them anchor by anchor.
# The authors' weight 1, balanced (GradientShareBalance, target 0.9: the
# one setting chosen on val for all methods, docs/training_controls.md):
# the term falls to a tenth of the detection losses within the schedule,
# and the balance keeps its share instead of a weight swept per data set.
# On test, seeds 0-2: +3.1 AP over the student, +2.1 [+0.3, +3.9] over the
# same weight unbalanced, +0.2 [-1.2, +1.5] over weight 64 (the previous
# demo config, chosen on val) (docs/results.md, "Balancing on test").
_base_ = [
    '../_base_/datasets/synthetic_coco_detection.py',
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
            # the authors' gamma=2, beta=1, theta=1.8, T=1 with the paper's
            # w*KL and the normaliser over the kept anchors: the loss the
            # demo's results were measured with (the COCO configs use the
            # authors' code's form instead, see docs/methods/adl.md)
            loss_adl=dict(
                type='ADLoss',
                beta=1.0,
                gamma=2.0,
                theta=1.8,
                base='kl',
                normaliser='kept',
                temperature=1.0,
                loss_weight=1.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
