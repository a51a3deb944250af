"""Whole batches drawn from each source of a ConcatDataset in turn."""
from __future__ import annotations

import itertools
from typing import Iterator, List, Optional, Sequence

import torch
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Dataset, Sampler


@DATA_SAMPLERS.register_module()
class AlternatingSourceSampler(Sampler):
    """Infinite sampler whose batches alternate between sources.

    The dataset is a ``ConcatDataset`` (mmengine's or torch's, anything
    with ``cumulative_sizes``) and a source is one or more of its data sets
    (``sources``); batch ``k`` holds ``batch_size`` images of source
    ``k mod S`` (``S`` sources). Each source is an endless, independently
    shuffled stream over the images of its data sets, so a small source
    repeats while a large one is still being read. This is how the SAD
    authors fed their student: a labeled batch, then a batch of the second
    stream (labeled images with ground truth and unlabeled images with
    pseudo boxes), and so on. mmdet's ``MultiSourceSampler`` instead mixes
    the sources inside every batch.

    Use it with ``batch_sampler=None`` and the dataloader's ``batch_size``
    equal to this sampler's, so that the dataloader cuts its index stream
    at the source boundaries. Under distributed training every process
    draws its own share of each source (disjoint indices, one seed synced
    across processes) and all processes are on the same source at every
    step.

    Args:
        dataset: A ``ConcatDataset`` of the sources, in the order of the
            alternation.
        batch_size: Images per batch (per process).
        sources: The data sets of each source, by their position in the
            ``ConcatDataset``, e.g. ``[[0], [1, 2]]``: batches of data set 0
            alternate with batches drawn from data sets 1 and 2 together.
            ``None``: every data set is a source.
        shuffle: Shuffle each source's stream.
        seed: Random seed; a synced random one when ``None``.
    """

    def __init__(self,
                 dataset: Dataset,
                 batch_size: int,
                 sources: Optional[Sequence[Sequence[int]]] = None,
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not hasattr(dataset, 'cumulative_sizes'):
            raise TypeError(
                'AlternatingSourceSampler needs a ConcatDataset of the '
                f'sources, got a {type(dataset).__name__}; set '
                "train_dataloader.dataset=dict(type='ConcatDataset', "
                'datasets=[...]).')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.rank, self.world_size = get_dist_info()
        ends = list(dataset.cumulative_sizes)
        starts = [0] + ends[:-1]
        num_sets = len(ends)
        if sources is None:
            sources = [[i] for i in range(num_sets)]
        members = [i for source in sources for i in source]
        if sorted(members) != list(range(num_sets)):
            raise ValueError(
                f'sources={[list(s) for s in sources]} must name each of the '
                f'{num_sets} data sets of the ConcatDataset exactly once.')
        #: global indices of each source's images
        self.source_indices: List[torch.Tensor] = [
            torch.cat([torch.arange(starts[i], ends[i]) for i in source])
            for source in sources
        ]
        empty = [k for k, idx in enumerate(self.source_indices)
                 if len(idx) == 0]
        if empty:
            raise ValueError(f'Sources {empty} are empty: every source must '
                             'hold images.')

    def _source_stream(self, source: int) -> Iterator[int]:
        """Endless global indices of one source, this process's share."""
        generator = torch.Generator()
        generator.manual_seed(self.seed + source)
        indices = self.source_indices[source]

        def endless() -> Iterator[int]:
            while True:
                order = torch.randperm(len(indices), generator=generator) \
                    if self.shuffle else torch.arange(len(indices))
                yield from indices[order].tolist()

        return itertools.islice(endless(), self.rank, None, self.world_size)

    def __iter__(self) -> Iterator[int]:
        streams = [
            self._source_stream(i) for i in range(len(self.source_indices))
        ]
        for stream in itertools.cycle(streams):
            yield from itertools.islice(stream, self.batch_size)

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to do: the streams are endless."""
