# PKD on the GFL demo pair: the settings of
# pkd_retinanet_r18_to_r18-w16_synthetic.py (the authors' Faster R-CNN
# weight 6 on all five levels, a 1x1 adapter from the student's 64 neck
# channels to the teacher's 128), balanced. Not tuned. It is the feature
# part of bckd-pkd_gfl_r18_to_r18-w16_synthetic.py.
_base_ = '../_base_/distiller_gfl_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(type='PKD', adapter=dict(type='ConvAdapter'),
             loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
