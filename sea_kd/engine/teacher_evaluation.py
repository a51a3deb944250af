"""Evaluate a distiller's frozen teacher with an mmengine evaluator.

Shared by :class:`~sea_kd.engine.hooks.TeacherEvaluationHook` (the teacher's
metrics at the first validation of a training run) and
``tools/check_pair.py`` (the teacher's AP on the first validation images).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import torch
from mmdet.evaluation import CocoMetric
from mmengine.dist import all_gather_object
from mmengine.evaluator import Evaluator
from mmengine.runner.amp import autocast
from torch import nn

from ..models.distillers import Distiller
from ..utils.model_wrappers import unwrap_model


def unwrap_distiller(model: nn.Module) -> Distiller:
    """The sea_kd distiller inside ``model`` (DDP and other wrappers removed).

    Raises:
        TypeError: If the model is not a sea_kd distiller.
    """
    inner = unwrap_model(model)
    if not isinstance(inner, Distiller):
        raise TypeError(
            f'The model is a {type(inner).__name__}, not a sea_kd distiller '
            "(type='Distiller' with its methods), so "
            'it has no teacher to evaluate. Use a distiller config, or remove '
            'TeacherEvaluationHook from custom_hooks.')
    return inner


def prefix_metrics(metrics: Dict[str, Any],
                   prefix: str = 'teacher') -> Dict[str, Any]:
    """``{'coco/bbox_mAP': v}`` -> ``{'teacher/coco/bbox_mAP': v}``."""
    return {f'{prefix}/{key}': value for key, value in metrics.items()}


def _img_id(sample: Any) -> Any:
    metainfo = getattr(sample, 'metainfo', None)
    if metainfo is not None:
        return metainfo.get('img_id')
    return sample.get('img_id') if isinstance(sample, dict) else None


def evaluate_teacher(model: nn.Module,
                     dataloader: Iterable,
                     evaluator: Evaluator,
                     num_batches: Optional[int] = None,
                     fp16: bool = False,
                     restrict_to_seen: Optional[bool] = None
                     ) -> Dict[str, Any]:
    """Run the distiller's teacher over a dataloader and evaluate it.

    Every batch goes through the distiller's ``data_preprocessor`` and
    :meth:`Distiller.predict_teacher` (so the teacher sees the batch as
    it does in training), then into ``evaluator``. Under distributed
    training each process runs its shard of the dataloader (its distributed
    sampler) and the evaluator collects the results of all processes, like
    mmengine's ``ValLoop``; every process gets the same metrics back.

    With ``num_batches`` smaller than the dataloader, only those batches are
    evaluated. A :class:`~mmdet.evaluation.CocoMetric` reads its ground truth
    from its annotation file, so it is then restricted to the images that
    were run (otherwise the others would count as missed objects).

    Args:
        model: A sea_kd distiller, possibly wrapped (DDP).
        dataloader: Batches as mmengine's dataloaders give them; its
            ``dataset`` must have ``metainfo`` and a length.
        evaluator: A fresh evaluator (its results must be empty); its
            ``dataset_meta`` is set from the dataset.
        num_batches: Number of batches per process to evaluate; ``None`` for
            all.
        fp16: Run the teacher under autocast (as ``val_cfg.fp16`` does).
        restrict_to_seen: Whether to score CocoMetrics on the images run
            only. ``None``: when only ``num_batches`` batches are run. Set it
            for a dataloader over part of the annotation file's images.

    Returns:
        The evaluator's metrics, unprefixed (e.g. ``{'coco/bbox_mAP': ...}``).
    """
    if num_batches is not None and (not isinstance(num_batches, int)
                                    or num_batches < 1):
        raise ValueError(f'num_batches must be a positive int or None, got '
                         f'{num_batches!r}.')
    distiller = unwrap_distiller(model)
    dataset = dataloader.dataset
    if hasattr(dataset, 'metainfo'):
        evaluator.dataset_meta = dataset.metainfo
    total_batches = len(dataloader)
    complete = num_batches is None or num_batches >= total_batches
    if restrict_to_seen is None:
        restrict_to_seen = not complete
    img_ids: List[Any] = []
    for index, data_batch in enumerate(dataloader):
        if not complete and index >= num_batches:
            break
        with torch.no_grad(), autocast(enabled=fp16):
            data = distiller.data_preprocessor(data_batch, False)
            outputs = distiller.predict_teacher(data['inputs'],
                                                data['data_samples'])
        evaluator.process(data_samples=outputs, data_batch=data_batch)
        img_ids.extend(_img_id(sample) for sample in outputs)
    if complete:
        size = len(dataset)
    else:
        # the first batches of a process hold no sampler padding (that is
        # at the end of each shard): every image run counts
        size = sum(all_gather_object(len(img_ids)))
    if restrict_to_seen:
        seen = {i for part in all_gather_object(img_ids) for i in part}
        for metric in evaluator.metrics:
            if not isinstance(metric, CocoMetric):
                continue
            if None in seen:
                raise ValueError(
                    'Scoring the teacher on part of the data set with '
                    'CocoMetric needs `img_id` in the data samples (keep it '
                    "in PackDetInputs' meta_keys); or evaluate the whole set "
                    '(num_batches=None).')
            metric.img_ids = sorted(seen)
    return evaluator.evaluate(size)
