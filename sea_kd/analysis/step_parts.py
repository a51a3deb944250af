"""Parts of a distiller's training step, timed apart from the step
(``tools/benchmark.py``'s phases (d) and (e)).

- (d) :func:`terms_step`: every method's terms, forward and backward, on a
  step's record: the distillation's own arithmetic, whose share of the
  step says how much of c - (a + b) is the terms' work and how much is
  elsewhere (capture, the record, memory traffic).
- (e) :func:`own_passes_step`: the methods' own network passes, the part
  of a method's limit beyond the student's step and the teacher's
  forward.

A method that runs a network by design (CrossKD the teacher head's tail on
the student's features, KD-DETR both decoders on its points) names those
passes in :meth:`~sea_kd.models.methods.DistillMethod.own_passes`. To time
them alone, a step's record is kept with every tensor cut from the step's
graph (:func:`detached`): the passes' backward then ends at the record's
tensors instead of running on through the student, whose backward (a)
already counts. The same holds for the terms of (d).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Dict, Iterable, List, Optional

import torch
from mmengine.structures import BaseDataElement
from torch import Tensor

from sea_kd.models.capture import DistillRecord
from sea_kd.models.methods import DistillMethod


def detached(obj: Any, memo: Optional[Dict[int, Any]] = None) -> Any:
    """``obj`` with every tensor replaced by a detached copy, a leaf that
    requires grad where the original did (sharing its storage).

    Dataclasses (every field), named tuples, tuples, lists and dicts are
    copied through, and one tensor stays one tensor wherever it appears.
    mmengine data elements (data samples, instances) are detached by
    their own ``detach`` (their tensors are targets and metadata, no
    leaves). Anything else is kept as it is.
    """
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if torch.is_tensor(obj):
        new = obj.detach()
        if obj.requires_grad:
            new.requires_grad_()
    elif isinstance(obj, BaseDataElement):
        new = obj.detach()
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        new = copy.copy(obj)
        for field in dataclasses.fields(obj):
            object.__setattr__(new, field.name,
                               detached(getattr(obj, field.name), memo))
    elif isinstance(obj, tuple) and hasattr(obj, '_fields'):
        new = type(obj)(*(detached(v, memo) for v in obj))
    elif isinstance(obj, (tuple, list)):
        new = type(obj)(detached(v, memo) for v in obj)
    elif isinstance(obj, dict):
        new = type(obj)((k, detached(v, memo)) for k, v in obj.items())
    else:
        return obj
    memo[id(obj)] = new
    return new


def has_own_passes(model: torch.nn.Module) -> bool:
    """Whether a method of the distiller names passes of its own
    (overrides :meth:`DistillMethod.own_passes`)."""
    return any(type(m).own_passes is not DistillMethod.own_passes
               for m in model.methods.values())


def record_of_step(model: torch.nn.Module, inputs: Tensor,
                   data_samples: list) -> DistillRecord:
    """The record a distiller's methods read in one training step on the
    batch, cut from the step's graph (:func:`detached`)."""
    captured = []
    patched_before = vars(model).get('distill_losses_from')
    distill_losses_from = model.distill_losses_from

    def grab(record: DistillRecord) -> Dict[str, Tensor]:
        captured.append(record)
        return distill_losses_from(record)

    model.distill_losses_from = grab
    try:
        model.loss(inputs, data_samples)
    finally:
        if patched_before is None:
            del model.distill_losses_from
        else:
            model.distill_losses_from = patched_before
    if not captured:
        raise RuntimeError('The step ran no distillation method (a batch '
                           'the distiller trains the student alone on).')
    return detached(captured[0])


def _as_the_methods_run(model: torch.nn.Module) -> torch.autocast:
    """float32, autocast off, as :meth:`Distiller.loss` runs the methods."""
    device_type = next(model.student.parameters()).device.type
    return torch.autocast(device_type=device_type, enabled=False)


def _backward(outputs: Iterable[Tensor]) -> None:
    """One backward pass from the scalars among ``outputs`` that carry a
    gradient (nothing when none does)."""
    grads = [out for out in outputs if out.requires_grad]
    if grads:
        torch.autograd.backward(grads)


def own_passes(model: torch.nn.Module, record: DistillRecord) -> List[Tensor]:
    """The outputs of every method's own passes on ``record``, in float32
    as the methods run (empty: no method runs a network of its own)."""
    outputs = []
    with _as_the_methods_run(model):
        for method in model.methods.values():
            outputs.extend(method.own_passes(record) or [])
    return outputs


def own_passes_step(model: torch.nn.Module, record: DistillRecord) -> None:
    """Forward and backward of the methods' own passes on ``record``, from
    cleared gradients (fresh leaves, the parameters' set to ``None``) as a
    training step's backward starts."""
    model.zero_grad(set_to_none=True)
    _backward(out.float().sum()
              for out in own_passes(model, detached(record)))


def terms_step(model: torch.nn.Module,
               record: DistillRecord) -> Dict[str, Tensor]:
    """Forward and backward of every method's terms on a cut copy of
    ``record`` (:func:`detached`; their own passes included), from cleared
    gradients, in float32 as :meth:`Distiller.loss` runs them.

    The backward reaches the methods' own parameters (projectors,
    adapters) and, where a method runs a network by design (KD-DETR's
    decoders), that network's; it ends at the record's tensors, not in
    the backbones that made them.

    Returns:
        dict: The terms' values, detached, by name as
        :meth:`Distiller.distill_losses_from` gives them.
    """
    terms = terms_forward(model, record)
    terms_backward(terms)
    return {name: value.detach() for name, value in terms.items()}


def terms_forward(model: torch.nn.Module,
                  record: DistillRecord) -> Dict[str, Tensor]:
    """The forward half of :func:`terms_step`: the terms, in the graph
    of a cut copy of ``record``, the gradients cleared."""
    model.zero_grad(set_to_none=True)
    with _as_the_methods_run(model):
        return model.distill_losses_from(detached(record))


def terms_backward(terms: Dict[str, Tensor]) -> None:
    """The backward half of :func:`terms_step`."""
    _backward(terms.values())
