# TBD, the other reading of the harmony score: agreement of the teacher's
# class score and IoU, HS = 1 - |s - u|, instead of the product
# s^kappa * u^(1 - kappa) (docs/methods/tbd.md, "Harmony score").
_base_ = './tbd_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(harmony_form='agreement')
