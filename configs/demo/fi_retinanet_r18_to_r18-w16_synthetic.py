# Plain feature imitation (MSE on adapted FPN features), RetinaNet R-18 teacher
# -> narrow R-18 student, on the generated data set. The baseline every
# method has to beat.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(
    methods=[
        dict(
            type='FeatureImitation',
            adapter=dict(type='ConvAdapter'),
            # the teacher FPN features are large (initial MSE about 800), so a
            # small weight keeps the term from swamping the detection losses
            loss_feat=dict(type='FeatureMSELoss', loss_weight=0.01)),
    ])
