"""Tests for :class:`AlternatingSourceSampler` and the SAD COCO configs'
two streams, built on a generated stand-in for train2017/unlabeled2017."""
import itertools
import json
import os
import os.path as osp
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from torch.utils.data import ConcatDataset, Dataset

from sea_kd.analysis.synthetic_coco import generate_synthetic_coco
from sea_kd.datasets import AlternatingSourceSampler, split_labeled_unlabeled

from ..conftest import REPO

SAD_CONFIGS = [
    'configs/adl/sad_retinanet_r101_to_r50_fpn_600px-270k_coco-unlabeled.py',
    'configs/adl/'
    'sad_retinanet_x101-64x4d_to_r101_fpn_500px-270k_coco-unlabeled.py',
]


class _Range(Dataset):

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _concat(*sizes):
    return ConcatDataset([_Range(n) for n in sizes])


def _source_of(index, sizes):
    bounds = list(itertools.accumulate(sizes))
    return next(i for i, end in enumerate(bounds) if index < end)


def test_batches_alternate_between_sources_and_cover_each():
    sizes = (5, 13)
    sampler = AlternatingSourceSampler(_concat(*sizes), batch_size=3, seed=0)
    indices = list(itertools.islice(iter(sampler), 3 * 40))
    batches = [indices[i:i + 3] for i in range(0, len(indices), 3)]
    for k, batch in enumerate(batches):
        assert {_source_of(i, sizes) for i in batch} == {k % 2}, (k, batch)
    # every image of each source is drawn; the small source repeats
    assert set(indices) == set(range(18))
    # each pass over a source is a permutation of it
    small = [i for i in indices if i < 5]
    assert sorted(small[:5]) == list(range(5))


def test_processes_draw_disjoint_shares(monkeypatch):
    sizes = (8, 8)
    seen = []
    for rank in range(2):
        monkeypatch.setattr(
            'sea_kd.datasets.alternating_source_sampler.get_dist_info',
            lambda rank=rank: (rank, 2))
        sampler = AlternatingSourceSampler(_concat(*sizes), batch_size=2,
                                           seed=7)
        indices = list(itertools.islice(iter(sampler), 8))
        # batch k of every process comes from source k mod 2
        assert [_source_of(i, sizes) for i in indices] == [0, 0, 1, 1] * 2
        seen.append(indices)
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(16))


def test_a_source_can_span_several_data_sets():
    sizes = (4, 3, 5)
    sampler = AlternatingSourceSampler(_concat(*sizes), batch_size=2,
                                       sources=[[0], [1, 2]], seed=1)
    indices = list(itertools.islice(iter(sampler), 2 * 30))
    first = [i for k in range(0, 30, 2) for i in indices[2 * k:2 * k + 2]]
    second = [i for k in range(1, 30, 2) for i in indices[2 * k:2 * k + 2]]
    assert set(first) == set(range(4))
    assert set(second) == set(range(4, 12))
    assert sorted(second[:8]) == list(range(4, 12))  # one pass, shuffled


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match='needs a ConcatDataset'):
        AlternatingSourceSampler(_Range(3), batch_size=2)
    with pytest.raises(ValueError, match='empty'):
        AlternatingSourceSampler(_concat(3, 0), batch_size=2)
    with pytest.raises(ValueError, match='exactly once'):
        AlternatingSourceSampler(_concat(3, 2, 2), batch_size=2,
                                 sources=[[0], [1, 1]])


@pytest.fixture(scope='module')
def coco_stand_in(tmp_path_factory):
    """data/coco with train2017 (labeled) and unlabeled2017 whose pseudo
    labels are the held-out ground truth, in the SAD configs' file names."""
    root = tmp_path_factory.mktemp('coco')
    summary = generate_synthetic_coco(str(root / 'gen'), num_train=12,
                                      num_val=4, seed=2)
    labeled, unlabeled = split_labeled_unlabeled(summary['train_ann_file'],
                                                 0.5, seed=0)
    ann = root / 'annotations'
    ann.mkdir()
    os.symlink(summary['train_img_dir'], root / 'train2017')
    os.symlink(summary['train_img_dir'], root / 'unlabeled2017')
    with open(labeled) as f:
        train = json.load(f)
    with open(summary['train_ann_file']) as f:
        full = json.load(f)
    held_out = {im['id']
                for im in json.loads(Path(unlabeled).read_text())['images']}
    pseudo = dict(full, images=[im for im in full['images']
                                if im['id'] in held_out],
                  annotations=[a for a in full['annotations']
                               if a['image_id'] in held_out])
    (ann / 'instances_train2017.json').write_text(json.dumps(train))
    for name in ('r101-600px', 'x101-500px'):
        (ann / f'instances_unlabeled2017_pseudo-{name}.json').write_text(
            json.dumps(pseudo))
    return str(root) + '/', sorted(im['id'] for im in train['images']), \
        sorted(held_out)


@pytest.mark.parametrize('config', SAD_CONFIGS)
def test_sad_coco_config_alternates_its_two_streams(coco_stand_in, config):
    """Batch 0, 2, 4... hold train2017 images with their ground truth;
    batches 1, 3, 5... are drawn from train2017 and the pseudo-labelled
    unlabeled2017 together."""
    root, train_ids, unlabeled_ids = coco_stand_in
    cfg = Config.fromfile(osp.join(REPO, config))
    loader_cfg = cfg.train_dataloader
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    sets = loader_cfg.dataset.datasets
    assert loader_cfg.sampler.sources == [[0], [1, 2]]
    for dataset in sets:
        dataset.data_root = root
        # the generated images are 128 px: keep objects above min_size
        dataset.filter_cfg.min_size = 4
        dataset.metainfo = dict(classes=('circle', 'square', 'triangle',
                                         'ring', 'cross', 'star'))
    assert sets[0].ann_file == 'annotations/instances_train2017.json'
    assert sets[1].ann_file == sets[0].ann_file
    assert 'unlabeled2017_pseudo' in sets[2].ann_file
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    assert isinstance(loader.sampler, AlternatingSourceSampler)
    batches = list(itertools.islice(iter(loader), 24))
    second_stream = set()
    for k, batch in enumerate(batches):
        ids = {s.metainfo['img_id'] for s in batch['data_samples']}
        assert len(batch['data_samples']) == loader_cfg.batch_size
        if k % 2 == 0:
            assert ids <= set(train_ids), (k, ids)
        else:
            second_stream |= ids
    assert second_stream & set(train_ids)
    assert second_stream & set(unlabeled_ids)
    for sample in batches[1]['data_samples']:
        assert len(sample.gt_instances) > 0  # ground truth or pseudo boxes
