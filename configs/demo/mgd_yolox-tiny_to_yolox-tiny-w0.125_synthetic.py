# MGD (masked generative distillation of the neck levels) on the YOLOX
# demo pair: the authors' alpha 2e-5 and mask ratio 0.65, balanced
# (GradientShareBalance, target 0.9). Not tuned on this pair.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[dict(type='MGD', alpha=2e-5, mask_ratio=0.65)],
    balance=dict(type='GradientShareBalance', target=0.9))
