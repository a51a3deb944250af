# Two methods in one distiller: feature imitation on the FPN levels plus ADL
# on the dense class logits, RetinaNet R-18 teacher -> narrow R-18 student,
# on the generated data set. The teacher runs once per step for both (its
# backbone, neck and dense head); the losses are loss_fi_feat and
# loss_adl_cls.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    # the demo's FI settings (see fi_retinanet_r18_to_r18-w16_synthetic)
    dict(type='FeatureImitation', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='FeatureMSELoss', loss_weight=0.01)),
    # the demo's ADL settings (see adl_retinanet_r18_to_r18-w16_synthetic)
    dict(type='ADL',
         loss_adl=dict(type='ADLoss', beta=1.0, gamma=2.0, theta=1.8,
                       base='kl', normaliser='kept', temperature=1.0,
                       loss_weight=1.0)),
])
