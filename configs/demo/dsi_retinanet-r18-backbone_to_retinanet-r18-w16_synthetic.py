# DSI (RT-DETRv4's cosine distillation) on the RetinaNet demo pair with a
# backbone-only teacher: the demo teacher's ResNet-18 alone, read from the
# backbone keys of its detector checkpoint (`ckpt_prefix`), ImageNet
# normalisation. Its C5 map (stride 32) teaches the student's P5 through a
# 1x1 projection, cosine loss with the weight of the authors' RT-DETRv4-S
# config (5); balanced (GradientShareBalance, target 0.9, the one setting
# of every demo config; RT-DETRv4 adapts its weight with its own gradient
# rule). Not tuned.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    teacher=dict(
        _delete_=True,
        type='BackboneTeacher',
        backbone=dict(type='ResNet', depth=18, out_indices=(3, ),
                      init_cfg=None),
        ckpt_prefix='backbone.'),
    methods=[dict(type='DSI')],
    balance=dict(type='GradientShareBalance', target=0.9))
