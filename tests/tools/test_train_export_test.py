"""End to end through the tools, as a user runs them (subprocesses)."""
import os.path as osp
import pickle

import pytest
import torch

from .helpers import (DEMO, data_options, free_port,
                      keep_all_detections_configs, python, run_tool, short_run)

pytestmark = pytest.mark.slow

FI_CONFIG = osp.join(DEMO, 'fi_retinanet_r18_to_r18-w16_synthetic.py')


@pytest.fixture(scope='module')
def zero_threshold_configs(tmp_path_factory):
    """Student and distiller configs whose student keeps every detection,
    so that comparing predictions compares something."""
    return keep_all_detections_configs(tmp_path_factory.mktemp('configs'))


#: pair -> (student, distiller, teacher fixture, a term, a method's state)
PAIRS = {
    'retinanet-fi': ('retinanet_r18-w16_synthetic.py',
                     'fi_retinanet_r18_to_r18-w16_synthetic.py',
                     'retina_teacher_ckpt', 'loss_fi_feat',
                     'methods.fi.adapters.'),
    # the RTMDet demo pair with ADL: its dense head and targets are read
    'rtmdet-adl': ('rtmdet_tiny-w0.125_synthetic.py',
                   'adl_rtmdet-tiny_to_rtmdet-tiny-w0.125_synthetic.py',
                   'rtmdet_teacher_ckpt', 'loss_adl_cls', None),
}


def _predictions(pkl):
    with open(pkl, 'rb') as f:
        results = pickle.load(f)
    return {r['img_id']: r['pred_instances'] for r in results}


@pytest.mark.parametrize('pair', sorted(PAIRS))
def test_train_export_and_test_give_the_same_predictions(
        tmp_path, synthetic_root, request, pair):
    student, distiller, teacher, term, method_state = PAIRS[pair]
    student_cfg, fi_cfg = keep_all_detections_configs(tmp_path, student,
                                                      distiller)
    teacher_ckpt = request.getfixturevalue(teacher)
    opts = [*data_options(synthetic_root),
            f'model.teacher_ckpt={teacher_ckpt}']
    work = tmp_path / 'fi'
    out = run_tool(python('tools/train.py', fi_cfg, '--work-dir', work,
                          '--cfg-options', *opts, *short_run(3)))
    assert term in out.stdout
    ckpt = work / 'iter_3.pth'
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    assert state and not any(k.startswith('teacher') for k in state)
    if method_state:
        assert any(k.startswith(method_state) for k in state)

    exported = tmp_path / 'student.pth'
    out = run_tool(python('tools/export_student.py', fi_cfg, ckpt, exported))
    assert 'verified against the student config: True' in out.stdout
    plain = torch.load(exported, map_location='cpu', weights_only=True)
    assert set(plain['state_dict']) == {
        k[len('student.'):] for k in state if k.startswith('student.')}

    run_tool(python('tools/test.py', student_cfg, exported, '--work-dir',
                    tmp_path / 'test_plain', '--out', tmp_path / 'plain.pkl',
                    '--metrics-out', tmp_path / 'plain.json',
                    '--cfg-options', *data_options(synthetic_root)))
    run_tool(python('tools/test.py', fi_cfg, ckpt, '--work-dir',
                    tmp_path / 'test_fi', '--out', tmp_path / 'fi.pkl',
                    '--cfg-options', *opts))
    plain_preds = _predictions(tmp_path / 'plain.pkl')
    fi_preds = _predictions(tmp_path / 'fi.pkl')
    assert plain_preds.keys() == fi_preds.keys() and len(plain_preds) == 8
    for img_id, pred in plain_preds.items():
        assert len(pred['bboxes']) > 0
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(torch.as_tensor(pred[key]),
                               torch.as_tensor(fi_preds[img_id][key])), key
    assert 'coco/bbox_mAP' in (tmp_path / 'plain.json').read_text()


INTERRUPT_HOOK = '''
import os
from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class CrashAfterIter(Hook):
    """Kill the process right after the checkpoint of iteration `at`."""
    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            os._exit(3)
'''


def test_resume_after_interruption_continues_at_the_right_iteration(
        tmp_path, synthetic_root, retina_teacher_ckpt):
    (tmp_path / 'crash_hook.py').write_text(INTERRUPT_HOOK)
    crashing = tmp_path / 'fi_crashing.py'
    crashing.write_text(
        f"_base_ = '{FI_CONFIG}'\n"
        "custom_imports = dict(imports=['sea_kd', 'crash_hook'])\n"
        "custom_hooks = [dict(type='CrashAfterIter', at=3)]\n")
    work = tmp_path / 'fi'
    opts = [*data_options(synthetic_root),
            f'model.teacher_ckpt={retina_teacher_ckpt}', *short_run(6, 3)]
    crashed = run_tool(
        python('tools/train.py', crashing, '--work-dir', work,
               '--cfg-options', *opts),
        env=dict(PYTHONPATH=str(tmp_path)), check=False)
    assert crashed.returncode == 3, crashed.stdout[-3000:]
    assert (work / 'iter_3.pth').exists()
    assert not (work / 'iter_6.pth').exists()

    resumed = run_tool(python('tools/train.py', FI_CONFIG, '--work-dir', work,
                              '--resume', '--cfg-options', *opts))
    assert 'resumed' in resumed.stdout.lower()
    train_lines = [line for line in resumed.stdout.splitlines()
                   if 'Iter(train)' in line]
    assert train_lines[0].split('Iter(train)')[1].split()[0] == '[4/6]'
    final = torch.load(work / 'iter_6.pth', map_location='cpu')
    assert final['meta']['iter'] == 6


def test_two_process_cpu_training_and_testing_with_dist_scripts(
        tmp_path, synthetic_root, retina_teacher_ckpt,
        zero_threshold_configs):
    import sys
    work = tmp_path / 'dist'
    out = run_tool(['bash', 'tools/dist_train.sh', FI_CONFIG, '2',
                    '--work-dir', str(work), '--cfg-options',
                    *data_options(synthetic_root),
                    f'model.teacher_ckpt={retina_teacher_ckpt}',
                    *short_run(2)],
                   env=dict(PYTHON=sys.executable, PORT=str(free_port()),
                            OMP_NUM_THREADS='1'))
    assert 'terminate called' not in out.stdout
    assert (work / 'iter_2.pth').exists()
    assert 'Distributed training: True' in out.stdout

    metrics = tmp_path / 'metrics.json'
    # the zero-threshold config keeps detections of a 2-iteration model
    out = run_tool(['bash', 'tools/dist_test.sh', zero_threshold_configs[1],
                    str(work / 'iter_2.pth'), '2', '--work-dir',
                    str(tmp_path / 'dist_test'), '--metrics-out',
                    str(metrics), '--cfg-options',
                    *data_options(synthetic_root),
                    f'model.teacher_ckpt={retina_teacher_ckpt}'],
                   env=dict(PYTHON=sys.executable, PORT=str(free_port()),
                            OMP_NUM_THREADS='1'))
    assert 'coco/bbox_mAP' in metrics.read_text()


def test_mmdet_packaged_train_py_trains_the_distiller(
        tmp_path, synthetic_root, retina_teacher_ckpt):
    import mmdet
    train_py = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                        'train.py')
    work = tmp_path / 'mmdet_tool'
    out = run_tool(python(train_py, FI_CONFIG, '--work-dir', work,
                          '--cfg-options', *data_options(synthetic_root),
                          f'model.teacher_ckpt={retina_teacher_ckpt}',
                          *short_run(2)))
    assert 'loss_fi_feat' in out.stdout
    assert (work / 'iter_2.pth').exists()
