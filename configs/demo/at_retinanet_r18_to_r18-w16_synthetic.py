# Attention transfer (docs/adding_a_method.md's worked example) on two
# backbone stages, read by module path; RetinaNet R-18 teacher -> narrow R-18
# student, on the generated data set. The stages differ in channels (the
# attention map averages them away) and agree in stride.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='AttentionTransfer',
         paths=('backbone.layer2', 'backbone.layer3'), beta=1000.0),
])
