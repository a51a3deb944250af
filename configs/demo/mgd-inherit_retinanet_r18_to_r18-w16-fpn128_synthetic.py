# MGD with the inheriting strategy (inherit_teacher=True: the student's neck
# and head start from the teacher's where shapes match), as the authors'
# configs whose teacher shares the student's detector type.
_base_ = './mgd_retinanet_r18_to_r18-w16-fpn128_synthetic.py'

model = dict(inherit_teacher=True)
