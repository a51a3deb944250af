"""docs/model_zoo.md lists exactly the configs there are, and each row and
command agrees with its config."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from ..conftest import REPO

PAGE = osp.join(REPO, 'docs', 'model_zoo.md')

#: the section of the page that lists each distiller type's configs
METHOD_SECTIONS = {
    'Distiller': 'Distiller',
    # one-method Distiller configs, by their method
    'PKD': 'PKD',
    'CWD': 'CWD',
    'MGD': 'MGD',
    'FGD': 'FGD',
    'CrossKD': 'CrossKD',
    'HMLD': 'HMLD',
    'LD': 'LD',
    'BCKD': 'BCKD',
    'DSI': 'DSI',
    'KDDETR': 'KD-DETR',
    'AttentionTransfer': 'Distiller',
    'FeatureImitation': 'Feature imitation',
    'ADL': 'ADL',
    'TBD': 'TBD',
    'SEA': 'SEA',
    'GDetKD': 'G-DetKD',
}
PLAIN_SECTION = 'Teachers and students'
DETECTOR_NAMES = {
    'RetinaNet': 'RetinaNet',
    'FasterRCNN': 'Faster R-CNN',
    'FCOS': 'FCOS',
    'GFL': 'GFL',
    'MaskRCNN': 'Mask R-CNN',
    'RTMDet': 'RTMDet',
    'DINO': 'DINO',
    'DABDETR': 'DAB-DETR',
    'YOLOX': 'YOLOX',
    'TOOD': 'TOOD',
}

ROW = re.compile(r'^\|\s*\[`[^`]+`\]\(\.\./(configs/[^)\s]+\.py)\)')
MENTION = re.compile(r'configs/[\w.+-]+(?:/[\w.+-]+)*\.py')


def config_files():
    """Every config under configs/ but configs/_base_/, repo-relative."""
    paths = glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                      recursive=True)
    return sorted(
        osp.relpath(p, REPO) for p in paths
        if not osp.relpath(p, REPO).startswith(osp.join('configs',
                                                        '_base_')))


CONFIGS = config_files()


def read_page():
    with open(PAGE) as f:
        return f.read()


def page_rows():
    """``{config: [(section, row), ...]}`` of the page's table rows."""
    rows = {}
    section = None
    for line in read_page().splitlines():
        if line.startswith('## '):
            section = line[3:].strip()
        match = ROW.match(line)
        if match:
            rows.setdefault(match.group(1), []).append((section, line))
    return rows


def cells(row):
    return [c.strip() for c in row.strip().strip('|').split('|')]


def test_every_config_is_listed_once():
    rows = page_rows()
    missing = sorted(set(CONFIGS) - set(rows))
    unknown = sorted(set(rows) - set(CONFIGS))
    repeated = sorted(c for c, found in rows.items() if len(found) > 1)
    assert not missing, (f'docs/model_zoo.md has no row for {missing}: add '
                         'one to the section of its method.')
    assert not unknown, (f'docs/model_zoo.md lists {unknown}, which do not '
                         'exist under configs/: remove or rename the rows.')
    assert not repeated, f'docs/model_zoo.md lists {repeated} twice.'
    assert len(CONFIGS) >= 30


def test_every_config_the_page_names_exists():
    named = set(MENTION.findall(read_page()))
    assert named, 'no config path found on the page'
    absent = sorted(p for p in named if not osp.isfile(osp.join(REPO, p)))
    assert not absent, f'docs/model_zoo.md names missing files: {absent}'


def final_checkpoint(cfg):
    train_cfg = cfg.train_cfg
    if train_cfg.get('max_epochs'):
        return f'epoch_{train_cfg.max_epochs}.pth'
    return f'iter_{train_cfg.max_iters}.pth'


def schedule_text(cfg):
    train_cfg = cfg.train_cfg
    if train_cfg.get('max_epochs'):
        return f'{train_cfg.max_epochs} epochs'
    return f'{train_cfg.max_iters} iterations'


def config_name(spec):
    return osp.splitext(osp.basename(spec))[0]


@pytest.mark.parametrize('path', CONFIGS)
def test_row_and_commands_agree_with_the_config(path):
    found = page_rows().get(path)
    if not found:
        pytest.fail(f'docs/model_zoo.md has no row for {path}')
    section, row = found[0]
    cfg = Config.fromfile(osp.join(REPO, path))
    model = cfg.model
    row_cells = cells(row)
    assert schedule_text(cfg) in row, (path, schedule_text(cfg), row)
    data = row_cells[1]
    if 'synthetic' in osp.basename(path):
        assert data.startswith('generated'), (path, data)
    elif 'my-dataset' in osp.basename(path):
        assert data.startswith('your own'), (path, data)
    else:
        assert data.startswith('COCO'), (path, data)

    if 'student' in model:
        kind = model.type
        if kind == 'Distiller' and len(model.methods) == 1:
            kind = model.methods[0]['type']
        assert kind in METHOD_SECTIONS, (
            f'{kind} has no section on docs/model_zoo.md: add one and '
            'name it in METHOD_SECTIONS of this test.')
        assert section.startswith(METHOD_SECTIONS[kind]), (path, section)
        # a teacher that is no detector config (a BackboneTeacher) by type
        teacher = config_name(model.teacher) if isinstance(
            model.teacher, str) else model.teacher['type']
        student = config_name(model.student)
        assert f'`{teacher}`' in row_cells[2], (path, teacher, row_cells[2])
        assert f'`{student}`' in row_cells[3], (path, student, row_cells[3])
        if data.startswith('COCO'):
            # the page says where the COCO configs want their teacher
            assert model.teacher_ckpt == f'checkpoints/{teacher}.pth', path
    else:
        assert section.startswith(PLAIN_SECTION), (path, section)
        assert DETECTOR_NAMES[model.type] in row_cells[2], (path, row)

    page = read_page()
    assert f'python tools/train.py {path}' in page, path
    test_cmd = re.compile(r'python tools/test\.py ' + re.escape(path) +
                          r' \S+/' + re.escape(final_checkpoint(cfg)) + '$',
                          re.MULTILINE)
    assert test_cmd.search(page), (path, final_checkpoint(cfg))
