# Plain feature imitation on the heterogeneous dense demo pair (GFL R-18
# teacher -> FCOS R-18 w16 student): the baseline the dense methods are
# paired with, with FI's weight on the GFL pair (0.01), not tuned.
_base_ = '../_base_/distiller_gfl-r18_to_fcos-r18-w16_synthetic.py'

model = dict(methods=[
    dict(type='FeatureImitation', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='FeatureMSELoss', loss_weight=0.01)),
])
