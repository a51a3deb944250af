# TBD ablation: harmonious distillation (HD) alone, no feature term.
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(loss_tfd=None)
