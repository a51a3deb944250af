"""docs/adding_a_detector_family.md shows the worked example's real view
file and names the places a family touches."""
import os.path as osp
import re
from pathlib import Path

from ..conftest import REPO, tiny_detector_cfg
from .compatibility_cells import FAMILIES

PAGE = osp.join(REPO, 'docs', 'adding_a_detector_family.md')
VIEW = 'sea_kd/models/detectors/tood_head_view.py'


def test_the_page_shows_the_view_file_verbatim():
    shown = re.findall(r'```python\n(.*?)```', Path(PAGE).read_text(),
                       re.DOTALL)
    with open(osp.join(REPO, VIEW)) as f:
        assert f.read() in shown, (
            'docs/adding_a_detector_family.md no longer shows '
            f'{VIEW} as it is; paste the file into its code block.')


def test_the_page_names_every_place_a_family_touches():
    text = Path(PAGE).read_text()
    for place in ['sea_kd/models/detectors/__init__.py',
                  'tests/models/detectors/test_tood_head_view.py',
                  'tests/models/detectors/test_dense_head_view.py',
                  'tests/conftest.py', 'compatibility.md',
                  'tests/docs/compatibility_cells.py', 'CHANGELOG']:
        assert place in text, place
        if place.startswith(('sea_kd', 'tests')):
            assert osp.exists(osp.join(REPO, place)), place


def test_the_worked_example_is_in_the_matrix_and_the_test_detectors():
    assert 'TOOD' in FAMILIES
    assert tiny_detector_cfg('tood').bbox_head.type == 'TOODHead'
    init = Path(REPO, 'sea_kd/models/detectors/__init__.py').read_text()
    assert 'tood_head_view' in init
