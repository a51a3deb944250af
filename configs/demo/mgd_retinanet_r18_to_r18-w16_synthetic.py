# MGD (masked generative distillation of the FPN levels), RetinaNet R-18
# teacher -> narrow R-18 student, on the generated data set, mask ratio 0.65
# on all five levels (the authors'); a 1x1 alignment maps the student's 64
# channels to the teacher's 128, as in the authors' code. alpha is not the
# authors' 2e-5: the term sums over channels and positions, and the demo
# teacher's FPN features are large (mean square about 800), so alpha is set
# as the FI demo's weight 0.01 spread over 128 channels x 341 positions per
# image (about 2e-7). Not tuned.
_base_ = '../_base_/distiller_retinanet_r18_to_r18-w16_synthetic.py'

model = dict(methods=[dict(type='MGD', alpha=2e-7, mask_ratio=0.65)])
