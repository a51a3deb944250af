# PKD on COCO for YOLOX: YOLOX-l teacher (mmdet's model zoo,
# yolox_l_8xb8-300e_coco, 49.4 AP) -> YOLOX-s student on mmdet's YOLOX-s
# recipe, with the hooks of the CrossKD YOLOX config
# (configs/crosskd/crosskd_yolox-l_to_yolox-s_8xb8-300e_coco.py). The
# authors publish no YOLOX setting: their weight 6 (Faster R-CNN) on the
# three neck levels, and a 1x1 adapter from the student's 128 channels to
# the teacher's 256 (PKD normalises each map, so the adapter only matches
# the channel count). Not a published setting.
_base_ = '../crosskd/crosskd_yolox-l_to_yolox-s_8xb8-300e_coco.py'

model = dict(methods=[
    dict(type='PKD', adapter=dict(type='ConvAdapter'),
         loss_feat=dict(type='PKDLoss', loss_weight=6.0)),
])
