# TBD ablation: task-decoupled feature distillation (TFD) alone, no HD.
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(loss_hd=None)
