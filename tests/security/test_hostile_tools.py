"""The tools used as a hostile or careless user would: checkpoints that run
code, checkpoints that belong to another config, a checkpoint exported over
itself, two runs in one work dir, a corrupt latest checkpoint, a data set
with more classes than the heads (subprocesses, as a user runs them)."""
import os.path as osp
import shutil

import pytest
import torch

from sea_kd.utils import work_dir_lock
from tests.security.hostile_checkpoints import (save_getattr_gadget_checkpoint,
                                                save_system_checkpoint)
from tests.tools.helpers import (DEMO, data_options,
                                 keep_all_detections_configs, python, run_tool,
                                 short_run)

pytestmark = pytest.mark.slow

FI_CONFIG = osp.join(DEMO, 'fi_retinanet_r18_to_r18-w16_synthetic.py')
STUDENT_CONFIG = osp.join(DEMO, 'retinanet_r18-w16_synthetic.py')
TEACHER_CONFIG = osp.join(DEMO, 'retinanet_r18_synthetic.py')


@pytest.fixture(scope='module')
def fi_run(tmp_path_factory, synthetic_root, retina_teacher_ckpt):
    """A 2-iteration feature-imitation run and its exported student (the
    student keeps every detection, so that its test reports an AP)."""
    work = tmp_path_factory.mktemp('fi_run')
    _, fi_config = keep_all_detections_configs(work)
    run_tool(python('tools/train.py', fi_config, '--work-dir', work,
                    '--cfg-options', *data_options(synthetic_root),
                    f'model.teacher_ckpt={retina_teacher_ckpt}',
                    *short_run(2)))
    exported = work / 'student.pth'
    run_tool(python('tools/export_student.py', FI_CONFIG,
                    work / 'iter_2.pth', exported))
    return work / 'iter_2.pth', exported, fi_config


def _test(config, ckpt, root, work, *options, check=False):
    return run_tool(python('tools/test.py', config, ckpt, '--work-dir', work,
                           '--cfg-options', *data_options(root), *options),
                    check=check)


def test_distiller_checkpoint_tests_without_the_teacher_on_disk(
        tmp_path, synthetic_root, fi_run):
    ckpt, _, fi_config = fi_run
    out = _test(fi_config, ckpt, synthetic_root, tmp_path / 'w',
                f'model.teacher_ckpt={tmp_path / "gone.pth"}', check=True)
    assert 'coco/bbox_mAP' in out.stdout


@pytest.mark.parametrize('case', ['student_cfg+distiller_ckpt',
                                  'distiller_cfg+exported',
                                  'student_cfg+teacher_ckpt'])
def test_checkpoint_of_another_config_is_refused(tmp_path, synthetic_root,
                                                 fi_run, retina_teacher_ckpt,
                                                 case):
    distiller_ckpt, exported, _ = fi_run
    config, ckpt, expected = {
        'student_cfg+distiller_ckpt':
        (STUDENT_CONFIG, distiller_ckpt, 'is a distiller checkpoint'),
        'distiller_cfg+exported':
        (FI_CONFIG, exported, 'is a plain detector checkpoint (it is a '
         'student exported from'),
        'student_cfg+teacher_ckpt':
        (STUDENT_CONFIG, retina_teacher_ckpt, 'it was written by the run '
         '`retinanet_r18_synthetic_'),
    }[case]
    out = _test(config, ckpt, synthetic_root, tmp_path / 'w')
    assert out.returncode != 0
    assert expected in out.stdout, out.stdout[-3000:]
    assert 'bbox_mAP' not in out.stdout


def test_export_refuses_to_overwrite_its_input(tmp_path, fi_run):
    ckpt = fi_run[0]
    copy = tmp_path / 'ckpt.pth'
    shutil.copy(ckpt, copy)
    before = copy.read_bytes()
    out = run_tool(python('tools/export_student.py', FI_CONFIG, copy, copy),
                   check=False)
    assert out.returncode != 0 and 'is the distiller checkpoint itself' in \
        out.stdout
    assert copy.read_bytes() == before


@pytest.mark.parametrize('save', [save_getattr_gadget_checkpoint,
                                  save_system_checkpoint])
def test_hostile_checkpoints_run_nothing_through_the_tools(
        tmp_path, synthetic_root, retina_teacher_ckpt, fi_run, save):
    """As teacher_ckpt, as tools/test.py's checkpoint, as --resume and to
    export: refused (exit 1, the file named), and nothing runs."""
    marker = tmp_path / 'marker'
    teacher = tmp_path / 'teacher_evil.pth'
    save(teacher, marker, torch.load(retina_teacher_ckpt)['state_dict'])
    distiller = tmp_path / 'distiller_evil.pth'
    save(distiller, marker, torch.load(fi_run[0])['state_dict'])
    opts = [*data_options(synthetic_root), *short_run(1)]
    runs = [
        python('tools/train.py', FI_CONFIG, '--work-dir', tmp_path / 'a',
               '--cfg-options', f'model.teacher_ckpt={teacher}', *opts),
        python('tools/test.py', TEACHER_CONFIG, teacher, '--work-dir',
               tmp_path / 'b', '--cfg-options', *opts),
        python('tools/train.py', FI_CONFIG, '--work-dir', tmp_path / 'c',
               '--resume', distiller, '--cfg-options',
               f'model.teacher_ckpt={retina_teacher_ckpt}', *opts),
        python('tools/export_student.py', FI_CONFIG, distiller,
               tmp_path / 'out.pth'),
    ]
    for args in runs:
        out = run_tool(args, check=False)
        assert out.returncode != 0, out.stdout[-2000:]
        assert 'UnsafeCheckpointError' in out.stdout
        assert '_evil.pth' in out.stdout
        assert not marker.exists()


def test_second_run_in_a_busy_work_dir_is_refused(tmp_path, synthetic_root):
    with work_dir_lock(str(tmp_path)):
        out = run_tool(python('tools/train.py', STUDENT_CONFIG, '--work-dir',
                              tmp_path, '--cfg-options',
                              *data_options(synthetic_root), *short_run(1)),
                       check=False)
    assert out.returncode != 0
    assert 'WorkDirBusyError' in out.stdout and 'in use by another' in \
        out.stdout
    assert not list(tmp_path.glob('*.pth'))


def test_resume_skips_a_corrupt_latest_checkpoint(tmp_path, synthetic_root):
    opts = ['--work-dir', tmp_path, '--cfg-options',
            *data_options(synthetic_root), *short_run(4, ckpt_interval=2)]
    run_tool(python('tools/train.py', STUDENT_CONFIG, *opts))
    latest = tmp_path / 'iter_4.pth'
    latest.write_bytes(latest.read_bytes()[:1000])
    out = run_tool(python('tools/train.py', STUDENT_CONFIG, '--resume',
                          *opts))
    assert f'Not resuming from `{latest}`' in out.stdout
    assert f'Resuming from `{tmp_path / "iter_2.pth"}`' in out.stdout
    assert 'resumed epoch: 0, iter: 2' in out.stdout
    assert torch.load(latest)['meta']['iter'] == 4


def test_more_data_classes_than_head_classes_stops_training(
        tmp_path, synthetic_root):
    out = run_tool(python('tools/train.py', STUDENT_CONFIG, '--work-dir',
                          tmp_path, '--cfg-options',
                          *data_options(synthetic_root), *short_run(1),
                          'model.bbox_head.num_classes=5'), check=False)
    assert out.returncode != 0
    assert 'DatasetClassesError' in out.stdout
    assert 'The model head predicts 5 classes but the training set has 6' \
        in out.stdout
    assert not list(tmp_path.glob('*.pth'))


def test_every_kind_of_checkpoint_the_project_writes_loads_weights_only(
        fi_run, retina_teacher_ckpt):
    """A detector's and a distiller's Runner checkpoints (message hub with
    HistoryBuffers, numpy scalars) and an exported student, in a fresh
    process that only imported sea_kd."""
    distiller, exported, _ = fi_run
    script = (
        'import sys, torch, sea_kd\n'
        'for path in sys.argv[1:]:\n'
        '    ckpt = torch.load(path, weights_only=True)\n'
        '    assert ckpt["state_dict"], path\n'
        '    hub = ckpt.get("message_hub", {}).get("log_scalars", {})\n'
        '    print(path, len(hub), sorted(ckpt))\n')
    out = run_tool(python('-c', script, retina_teacher_ckpt, distiller,
                          exported))
    lines = out.stdout.strip().splitlines()[-3:]
    assert [int(line.split()[1]) > 0 for line in lines] == [True, True,
                                                             False]
    assert all("'state_dict'" in line for line in lines)


def test_resume_runs_no_config_string_carried_in_the_checkpoint(
        tmp_path, synthetic_root, retina_teacher_ckpt, fi_run):
    """mmengine's resume runs ``meta['config']`` as a Python config; the
    string is removed on loading (a warning names the file), nothing runs
    and the run resumes."""
    marker = tmp_path / 'PWNED'
    ckpt = torch.load(fi_run[0])
    ckpt['meta']['config'] = f"__import__('os').system('touch {marker}')\n"
    evil = tmp_path / 'evil.pth'
    torch.save(ckpt, evil)
    out = run_tool(python('tools/train.py', FI_CONFIG, '--work-dir',
                          tmp_path / 'w', '--resume', evil, '--cfg-options',
                          f'model.teacher_ckpt={retina_teacher_ckpt}',
                          *data_options(synthetic_root), *short_run(3)))
    assert not marker.exists()
    assert "carries a config string in `meta['config']`" in out.stdout
    assert str(evil) in out.stdout
    assert 'resumed epoch: 0, iter: 2' in out.stdout


def test_load_from_another_model_is_refused_unless_asked(
        tmp_path, synthetic_root, retina_teacher_ckpt):
    """``load_from`` with the teacher's checkpoint for the student trained
    from scratch with warnings only; now it stops naming the file, and
    ``load_from_strict=False`` keeps mmengine's partial loading."""
    opts = ['--cfg-options', *data_options(synthetic_root), *short_run(1),
            f'load_from={retina_teacher_ckpt}']
    out = run_tool(python('tools/train.py', STUDENT_CONFIG, '--work-dir',
                          tmp_path / 'a', *opts), check=False)
    assert out.returncode != 0
    assert f'`load_from` file `{retina_teacher_ckpt}` does not match' in \
        out.stdout
    assert 'load_from_strict=False' in out.stdout
    assert not list((tmp_path / 'a').glob('*.pth'))
    run_tool(python('tools/train.py', STUDENT_CONFIG, '--work-dir',
                    tmp_path / 'b', *opts, 'load_from_strict=False'))
    assert (tmp_path / 'b' / 'iter_1.pth').exists()


def test_resume_of_another_configs_checkpoint_names_the_mismatch(
        tmp_path, synthetic_root, fi_run):
    """A distiller checkpoint resumed with the student's config failed with
    torch's optimizer parameter-group error."""
    out = run_tool(python('tools/train.py', STUDENT_CONFIG, '--work-dir',
                          tmp_path, '--resume', fi_run[0], '--cfg-options',
                          *data_options(synthetic_root), *short_run(3)),
                   check=False)
    assert out.returncode != 0
    assert f'`resume` file `{fi_run[0]}` does not match' in out.stdout
    assert 'looks like a distiller checkpoint' in out.stdout
    assert 'parameter group' not in out.stdout
