# Feature imitation on the DINO demo pair: MSE between the four
# ChannelMapper levels (both 256 channels, through the default 1x1
# adapter), the baseline every demo pair is compared with. Not tuned.
_base_ = '../_base_/distiller_dino-r18_to_dino-r18-w16_synthetic.py'

model = dict(methods=[dict(type='FeatureImitation')])
