"""tools/pseudo_label.py used carelessly: a checkpoint of another model, an
annotation file whose categories are in another order or lack a class, the
annotation file as the output, a threshold no box reaches, a broken image
(subprocesses, as a user runs it; the label mapping also in-process)."""
import json
import os
import os.path as osp
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.datasets.pseudo_labels import (category_ids_by_name,
                                           detections_to_coco)
from tests.tools.helpers import DEMO, REPO, cores_per_worker, python

pytestmark = pytest.mark.slow

TEACHER_CONFIG = osp.join(DEMO, 'retinanet_r18_synthetic.py')
STUDENT_CONFIG = osp.join(DEMO, 'retinanet_r18-w16_synthetic.py')
#: the teacher of 2 iterations scores low: keep every detection
KEEP_ALL = ['--score-thr', '0.0', '--cfg-options',
            'model.test_cfg.score_thr=0.0', 'model.test_cfg.max_per_img=20']


def pseudo_label(*args) -> subprocess.CompletedProcess:
    """Run tools/pseudo_label.py with the teacher config; stdout and stderr
    apart."""
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               OMP_NUM_THREADS=str(min(2, cores_per_worker())),
               PYTHONPATH=os.pathsep.join(
                   p for p in (REPO, os.environ.get('PYTHONPATH')) if p))
    return subprocess.run(
        python('tools/pseudo_label.py', TEACHER_CONFIG, *args), cwd=REPO,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=600)


@pytest.fixture(scope='module')
def unlabeled(synthetic_root, tmp_path_factory):
    """A COCO file of 3 training images, its image folder and a copy of its
    categories."""
    with open(osp.join(synthetic_root, 'annotations',
                       'instances_train.json')) as f:
        coco = json.load(f)
    images = coco['images'][:3]
    path = tmp_path_factory.mktemp('unlabeled') / 'unlabeled.json'
    path.write_text(json.dumps(dict(images=images, annotations=[],
                                    categories=coco['categories'])))
    return str(path), osp.join(synthetic_root, 'train'), coco['categories']


def write_ann(path, unlabeled, categories) -> str:
    ann, _, _ = unlabeled
    with open(ann) as f:
        coco = json.load(f)
    coco['categories'] = categories
    path.write_text(json.dumps(coco))
    return str(path)


def box_names(out) -> list:
    """(image id, box, category name) of every pseudo box of a file."""
    with open(out) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    return [(a['image_id'], [round(v, 2) for v in a['bbox']],
             names[a['category_id']]) for a in coco['annotations']]


# ------------------------------------------------------------- checkpoints
def _distiller_like_ckpt(path, teacher_ckpt):
    state = torch.load(teacher_ckpt)['state_dict']
    torch.save(dict(state_dict={f'student.{k}': v for k, v in state.items()},
                    meta=dict()), path)


def _student_ckpt(path, teacher_ckpt):
    model = MODELS.build(Config.fromfile(STUDENT_CONFIG).model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)


@pytest.mark.parametrize('make, expected', [
    (_distiller_like_ckpt, 'export the student'),
    (_student_ckpt, 'shape mismatches')])
def test_checkpoint_of_another_model_is_refused_naming_the_file(
        tmp_path, unlabeled, retina_teacher_ckpt, make, expected):
    ann, img_dir, _ = unlabeled
    ckpt = tmp_path / 'other.pth'
    make(ckpt, retina_teacher_ckpt)
    out = tmp_path / 'pseudo.json'
    proc = pseudo_label(ckpt, out, '--ann-file', ann, '--img-dir', img_dir,
                        *KEEP_ALL)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert f'`checkpoint` file `{ckpt}` does not match the model config' \
        in proc.stderr, proc.stderr[-3000:]
    assert expected in proc.stderr
    assert not out.exists()


# ------------------------------------------------------------- categories
def test_labels_map_to_the_files_categories_by_name(tmp_path, unlabeled,
                                                    retina_teacher_ckpt):
    """The same images with the categories listed in reverse order and given
    other ids get the same boxes with the same class names."""
    ann, img_dir, categories = unlabeled
    reordered = write_ann(tmp_path / 'reordered.json', unlabeled, [
        dict(c, id=100 + c['id']) for c in reversed(categories)])
    runs = {}
    for name, source in (('original', ann), ('reordered', reordered)):
        runs[name] = tmp_path / f'{name}_pseudo.json'
        proc = pseudo_label(retina_teacher_ckpt, runs[name], '--ann-file',
                            source, '--img-dir', img_dir, *KEEP_ALL)
        assert proc.returncode == 0, proc.stderr[-3000:]
    original = box_names(runs['original'])
    assert len({name for *_, name in original}) > 1  # several classes
    assert box_names(runs['reordered']) == original
    with open(runs['reordered']) as f:
        assert json.load(f)['categories'] == json.loads(
            Path(reordered).read_text())['categories']


def test_category_lookup_is_by_name_and_applied_to_every_label():
    categories = [dict(id=30, name='b'), dict(id=10, name='a'),
                  dict(id=20, name='c')]
    lookup = category_ids_by_name(['a', 'b', 'c'], categories, 'f.json')
    assert lookup.tolist() == [10, 30, 20]
    images = [dict(id=1, file_name='x.png', width=9, height=9)]
    dets = [dict(bboxes=np.zeros((3, 4)), scores=np.ones(3),
                 labels=np.array([2, 0, 1]))]
    coco = detections_to_coco(images, dets, categories, 0.5,
                              category_ids=lookup)
    assert [a['category_id'] for a in coco['annotations']] == [20, 10, 30]
    with pytest.raises(ValueError, match='label 3'):
        detections_to_coco(images, [dict(bboxes=np.zeros((1, 4)),
                                         scores=np.ones(1),
                                         labels=np.array([3]))],
                           categories, 0.5, category_ids=lookup)


def test_checkpoint_without_classes_takes_the_teacher_configs(
        tmp_path, unlabeled, retina_teacher_ckpt):
    """A checkpoint whose meta names no classes: the categories are the
    teacher config's training-set classes (not mmdet's COCO default)."""
    _, img_dir, categories = unlabeled
    ckpt = tmp_path / 'no_meta.pth'
    torch.save(dict(state_dict=torch.load(retina_teacher_ckpt)['state_dict'],
                    meta=dict()), ckpt)
    folder = tmp_path / 'images'
    folder.mkdir()
    name = sorted(os.listdir(img_dir))[0]
    os.symlink(osp.join(img_dir, name), folder / name)
    out = tmp_path / 'pseudo.json'
    proc = pseudo_label(ckpt, out, '--image-folder', folder, *KEEP_ALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    teacher = Config.fromfile(TEACHER_CONFIG)
    with open(out) as f:
        assert [c['name'] for c in json.load(f)['categories']] == list(
            teacher.train_dataloader.dataset.metainfo.classes)


def test_class_the_file_lacks_is_refused_naming_it(tmp_path, unlabeled,
                                                   retina_teacher_ckpt):
    ann, img_dir, categories = unlabeled
    lacking = write_ann(tmp_path / 'no_star.json', unlabeled,
                        [c for c in categories if c['name'] != 'star'])
    out = tmp_path / 'pseudo.json'
    proc = pseudo_label(retina_teacher_ckpt, out, '--ann-file', lacking,
                        '--img-dir', img_dir, *KEEP_ALL)
    assert proc.returncode != 0
    assert f"The teacher predicts 'star' but `{lacking}` has no category " \
        'of that name' in proc.stderr, proc.stderr[-3000:]
    assert not out.exists()


# ------------------------------------------------------------- the output
@pytest.mark.parametrize('link', [False, True])
def test_output_that_is_the_ann_file_is_refused(tmp_path, unlabeled,
                                                retina_teacher_ckpt, link):
    """The annotation file itself, or a hard link to it, as OUT."""
    ann, img_dir, categories = unlabeled
    copy = write_ann(tmp_path / 'ann.json', unlabeled, categories)
    out = copy
    if link:
        out = str(tmp_path / 'link.json')
        os.link(copy, out)
    before = Path(copy).read_text()
    proc = pseudo_label(retina_teacher_ckpt, out, '--ann-file', copy,
                        '--img-dir', img_dir, *KEEP_ALL)
    assert proc.returncode != 0
    assert f'OUT `{out}` is the --ann-file `{copy}`' in proc.stderr, \
        proc.stderr[-3000:]
    assert Path(copy).read_text() == before


def test_run_without_pseudo_boxes_warns_on_stderr_and_exits_1(
        tmp_path, unlabeled, retina_teacher_ckpt):
    ann, img_dir, _ = unlabeled
    out = tmp_path / 'none.json'
    proc = pseudo_label(retina_teacher_ckpt, out, '--ann-file', ann,
                        '--img-dir', img_dir, '--score-thr', '1.01')
    assert proc.returncode == 1
    assert 'WARNING: no pseudo boxes' in proc.stderr, proc.stderr[-3000:]
    assert '--score-thr 1.01' in proc.stderr
    assert f'Nothing was written to `{out}`' in proc.stderr
    assert not out.exists()


# ------------------------------------------------------------- the images
@pytest.mark.parametrize('source', ['--image-folder', '--ann-file'])
def test_broken_image_is_named(tmp_path, unlabeled, retina_teacher_ckpt,
                               source):
    ann, img_dir, _ = unlabeled
    folder = tmp_path / 'images'
    folder.mkdir()
    with open(ann) as f:
        names = [im['file_name'] for im in json.load(f)['images']]
    for name in names:
        os.symlink(osp.join(img_dir, name), folder / name)
    os.unlink(folder / names[1])
    (folder / names[1]).write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    args = ['--image-folder', folder] if source == '--image-folder' else \
        ['--ann-file', ann, '--img-dir', folder]
    out = tmp_path / 'pseudo.json'
    proc = pseudo_label(retina_teacher_ckpt, out, *args, *KEEP_ALL)
    assert proc.returncode != 0
    assert f'Cannot read image `{folder / names[1]}`' in proc.stderr, \
        proc.stderr[-3000:]
    assert not out.exists()
