# ADL across families: the GFL R-18 teacher's class logits distilled into
# the FCOS R-18 w16 student's, cell by cell; the authors' weight 1 and the
# loss form of the RetinaNet demo config, balanced (GradientShareBalance,
# target 0.9, the one setting chosen on val for all demo methods).
_base_ = '../_base_/distiller_gfl-r18_to_fcos-r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='ADL', loss_adl=dict(
            type='ADLoss', beta=1.0, gamma=2.0, theta=1.8, base='kl',
            normaliser='kept', temperature=1.0, loss_weight=1.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
