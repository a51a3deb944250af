# FGD (focal and global distillation of the neck levels) on the YOLOX demo
# pair: the RetinaNet demo config's settings (the authors' RetinaNet
# weights, temperature 0.5 relative to each map's mean |F|), balanced
# (GradientShareBalance, target 0.9). Not tuned on this pair.
_base_ = '../_base_/distiller_yolox-tiny_to_yolox-tiny-w0.125_synthetic.py'

model = dict(
    methods=[
        dict(type='FGD', temperature=0.5, relative_temperature=True,
             alpha_fg=1e-3, beta_bg=5e-4, gamma_attention=5e-4,
             lambda_global=5e-6),
    ],
    balance=dict(type='GradientShareBalance', target=0.9))
