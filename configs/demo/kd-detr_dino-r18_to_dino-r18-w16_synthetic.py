# KD-DETR on the DINO demo pair, with the authors' settings: the teacher's
# 100 matching queries as specific points and 100 general points a step
# (the student's number of queries, as the authors' 300 for their
# 300-query DAB-DETR), T = 10, weights 1 / 5 / 2, every student decoder
# layer from the teacher's last. Not tuned; unbalanced, as the HMLD demo
# config it is compared with.
_base_ = '../_base_/distiller_dino-r18_to_dino-r18-w16_synthetic.py'

model = dict(methods=[dict(type='KDDETR')])
