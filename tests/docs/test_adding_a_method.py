"""docs/adding_a_method.md shows the worked example's real files."""
import os.path as osp
import re
from pathlib import Path

from ..conftest import REPO

PAGE = osp.join(REPO, 'docs', 'adding_a_method.md')


def blocks():
    text = Path(PAGE).read_text()
    return re.findall(r'```python\n(.*?)```', text, re.DOTALL)


def test_the_page_shows_the_method_file_and_its_config_verbatim():
    shown = blocks()
    for path in ['sea_kd/models/methods/attention_transfer.py',
                 'configs/demo/at_retinanet_r18_to_r18-w16_synthetic.py']:
        with open(osp.join(REPO, path)) as f:
            assert f.read() in shown, (
                f'docs/adding_a_method.md no longer shows {path} as it is; '
                'paste the file into its code block.')


def test_the_page_names_every_place_a_method_touches():
    text = Path(PAGE).read_text()
    for place in ['sea_kd/models/methods/__init__.py', 'model_zoo.md',
                  'tests/docs/test_model_zoo.py', 'tools/demo.py',
                  'results.md', 'tools/compare.py', 'tools/benchmark.py',
                  'CHANGELOG', 'README']:
        assert place in text, place
