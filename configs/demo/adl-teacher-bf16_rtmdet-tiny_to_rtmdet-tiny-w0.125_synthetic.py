# ADL on the RTMDet demo pair with the lighter teacher: its backbone and
# neck stored and run in bfloat16 (`teacher_dtype`), its head and every
# loss in float32. Paired with adl_rtmdet-... to measure what the lighter
# teacher costs in AP (docs/results.md).
_base_ = './adl_rtmdet-tiny_to_rtmdet-tiny-w0.125_synthetic.py'

model = dict(teacher_dtype='bfloat16')
