"""The configs of the second generated data set differ from the demo's
only in the data set and the class count, as docs/results.md ("The second
data set") says."""
import os.path as osp

import pytest
from mmengine.config import Config

from ..conftest import REPO

DEMO = osp.join(REPO, 'configs', 'demo')
DATA_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader',
             'val_evaluator', 'test_evaluator')


def _load(name):
    return Config.fromfile(osp.join(DEMO, name + '.py')).to_dict()


@pytest.mark.parametrize('name', [
    'retinanet_r18_synthetic', 'retinanet_r18-w16_synthetic',
    'gfl_r18_synthetic', 'gfl_r18-w16_synthetic'
])
def test_varied_config_changes_only_data_and_classes(name):
    demo, varied = _load(name), _load(name.replace('synthetic',
                                                   'synthetic-varied'))
    assert demo['model']['bbox_head']['num_classes'] == 6
    assert varied['model']['bbox_head']['num_classes'] == 20
    varied['model']['bbox_head']['num_classes'] = 6
    assert varied['model'] == demo['model']
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper'):
        assert varied[key] == demo[key], key
    assert varied['train_dataloader']['dataset']['data_root'] == \
        'data/synthetic_coco_varied/'


def test_varied_teachers_share_one_data_set():
    retina = _load('retinanet_r18_synthetic-varied')
    gfl = _load('gfl_r18_synthetic-varied')
    for key in DATA_KEYS:
        assert gfl[key] == retina[key], key
