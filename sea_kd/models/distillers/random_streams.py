"""Random streams of the distiller's own, so that one seed pairs a run.

A student trained inside a :class:`Distiller` must start from the weights,
and draw the random numbers (RoI sampling, denoising queries, dropout), of
the student trained alone with the same seed: only then do
``tools/compare.py``'s seeds pair the two runs. Everything else that draws
(the teacher's build, the methods' modules and their initialisation, and
in every training step the methods' own draws: G-DetKD's region sampler and
region budget, KD-DETR's general points) does so on a stream of its own,
seeded from the run's seed, and gives the run's stream back untouched.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import (ContextManager, Dict, Iterable, Iterator, Optional, Set,
                    Tuple)

import torch
from mmengine.dist import get_rank
from mmengine.logging import MessageHub
from torch import nn

#: Spacing of the per-step keys (a prime), so that the streams of a step,
#: a rank and a part never meet the build-time offsets or one another.
_SPACING = 1_000_003


def devices_of(module: nn.Module) -> Set[torch.device]:
    """The devices of a module's parameters."""
    return {p.device for p in module.parameters()}


@contextmanager
def random_stream_of_its_own(offset: int = 1,
                             devices: Iterable[torch.device] = (),
                             seed: Optional[int] = None) -> Iterator[None]:
    """Run the block on a random stream of its own, seeded with
    ``seed + offset`` (modulo 2**64), and give the streams outside back as
    they were before the block: what the block draws moves no number that
    what comes after it would have drawn.

    Args:
        offset: Added to the seed.
        devices: The CUDA devices among them get a stream of their own too
            (the CPU's always does).
        seed: The base seed (default: the run's, ``torch.initial_seed()``).
    """
    cuda = sorted({torch.cuda.current_device() if d.index is None else
                   d.index for d in map(torch.device, devices)
                   if d.type == 'cuda'})
    base = torch.initial_seed() if seed is None else int(seed)
    with torch.random.fork_rng(devices=cuda):
        stream_seed = (base + offset) % 2**64
        torch.default_generator.manual_seed(stream_seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(stream_seed)
        yield


class StepStreams:
    """The streams of each training step's parts that are not the student's.

    The stream of a part of a step is seeded with::

        seed + (((step · P + rank) · P + call) · P + part + 1) · P

    (P = 1 000 003, modulo 2**64): ``seed`` is the run's seed
    (``torch.initial_seed()`` at the call, so that a resumed run which
    mmengine seeds again after building the model uses the seed of the run
    it resumes), ``step`` the runner's iteration (``MessageHub`` info
    ``'iter'``; -1 without a runner) and ``call`` the number of earlier
    calls of that part at that ``step`` (0 in a run; in a loop of one's own,
    where the hub's iteration stays put, it counts the steps). So the draws
    are reproducible, the same after ``--resume``, other on every DDP rank
    and in every step, and the student's own draws are those of the student
    alone.
    """

    def __init__(self) -> None:
        #: ``{part: (step, calls at that step)}``
        self._last: Dict[int, Tuple[int, int]] = {}

    def _step_and_call(self, part: int) -> Tuple[int, int]:
        step = MessageHub.get_current_instance().get_info('iter')
        step = -1 if step is None else int(step)
        last_step, calls = self._last.get(part, (None, 0))
        call = calls if last_step == step else 0
        self._last[part] = (step, call + 1)
        return step, call

    def of(self, part: int, device: torch.device) -> ContextManager[None]:
        """A context running its block on the stream of ``part`` of the
        current step; on ``device``'s stream too if it is a CUDA device."""
        step, call = self._step_and_call(part)
        key = ((step * _SPACING + get_rank()) * _SPACING + call) * _SPACING
        return random_stream_of_its_own(
            offset=((key + part + 1) * _SPACING) % 2**64, devices=(device, ))
