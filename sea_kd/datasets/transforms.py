"""Data transforms of sea_kd."""
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MarkUnlabeled(BaseTransform):
    """Flag an image as unlabeled (``results['unlabeled'] = True``).

    Put it in the pipeline of the unlabeled source of a semi-supervised
    config and add ``'unlabeled'`` to ``PackDetInputs``'s ``meta_keys``; the
    distiller then reads ``data_sample.metainfo['unlabeled']`` and, with
    online pseudo labels, replaces the image's (empty) ground truth by the
    teacher's detections.
    """

    def transform(self, results: dict) -> dict:
        results['unlabeled'] = True
        return results
