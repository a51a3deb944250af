"""Careless input (issue 30, item 6): a lock file that is a link, a test run
in a training run's work dir, the mode of an exported student, and mistakes
in configs and command lines that must stop with the problem and the fix.

The names that the fixes added are imported inside the tests, so that each
test fails on its own on code without them."""
import importlib.util
import os
import os.path as osp
import re
import shutil
import stat
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.utils import export_student, work_dir_lock
from tests.conftest import build, make_batch, tiny_detector_cfg
from tests.tools.helpers import DEMO, REPO, data_options, python, run_tool


# ------------------------------------------------------------ a. the lock
@pytest.mark.parametrize('link', ['symbolic', 'hard'])
def test_lock_file_that_is_a_link_is_refused_and_its_target_kept(
        tmp_path, link):
    precious = tmp_path / 'precious.txt'
    precious.write_text('someone else\'s data\n')
    work = tmp_path / 'work'
    work.mkdir()
    lock = work / '.train.lock'
    if link == 'symbolic':
        lock.symlink_to(precious)
    else:
        os.link(precious, lock)
    with pytest.raises(RuntimeError) as error:
        with work_dir_lock(str(work)):
            pass
    from sea_kd.utils import UnsafeLockFileError
    assert isinstance(error.value, UnsafeLockFileError)
    message = str(error.value)
    assert str(lock) in message
    assert f'{link} link' in message
    assert 'Remove' in message and '--work-dir' in message
    assert precious.read_text() == 'someone else\'s data\n'


# ------------------------------------------- b. test.py in a shared work dir
@pytest.mark.slow
def test_test_run_keeps_the_training_runs_dumped_config(tmp_path,
                                                         synthetic_root):
    config = osp.join(DEMO, 'retinanet_r18-w16_synthetic.py')
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=build(Config.fromfile(config).model)
                    .state_dict(), meta=dict()), ckpt)
    work = tmp_path / 'work'
    work.mkdir()
    # what the training run dumped: the config it trained with
    dumped = work / 'retinanet_r18-w16_synthetic.py'
    dumped.write_text('# the training run\'s config\n')
    run_tool(python('tools/test.py', config, ckpt, '--work-dir', work,
                    '--cfg-options', *data_options(synthetic_root)))
    assert dumped.read_text() == '# the training run\'s config\n'
    # the test run's config is next to its log
    (log_dir, ) = [p for p in work.iterdir() if p.is_dir()]
    assert list(log_dir.glob('*.log'))
    own = log_dir / 'retinanet_r18-w16_synthetic.py'
    assert 'RetinaNet' in own.read_text()


# ------------------------------------------------ c. the exported student
@pytest.mark.parametrize('umask,mode', [(0o022, 0o644), (0o027, 0o640)],
                         ids=['umask-022', 'umask-027'])
def test_exported_student_gets_the_mode_of_a_new_file(tmp_path, umask, mode):
    ckpt = tmp_path / 'distiller.pth'
    torch.save(dict(state_dict={'student.w': torch.ones(2),
                                'methods.fi.w': torch.ones(1)},
                    meta=dict()), ckpt)
    out = tmp_path / 'student.pth'
    old = os.umask(umask)
    try:
        export_student(str(ckpt), str(out))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert torch.load(out, weights_only=True)['state_dict'].keys() == {'w'}
    # the write stays atomic: no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'distiller.pth', 'student.pth']


# ------------------------------------------------- d. config mistakes
@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    """``(student_cfg, teacher_cfg, teacher_ckpt)``: tiny RetinaNets."""
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=32)
    ckpt = tmp_path_factory.mktemp('pair') / 'teacher.pth'
    torch.save(dict(state_dict=build(t_cfg).state_dict()), ckpt)
    return s_cfg, t_cfg, str(ckpt)


def distiller(pair, **kwargs):
    s_cfg, t_cfg, ckpt = pair
    cfg = dict(type='Distiller', student=s_cfg, teacher=t_cfg,
               teacher_ckpt=ckpt)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('methods,wrong', [
    (['FeatureImitation'], r"`methods\[0\]` is the str 'FeatureImitation'"),
    ('FeatureImitation', r"`methods` must be a list of method config dicts, "
     r"got the str 'FeatureImitation'"),
], ids=['an-entry', 'the-list'])
def test_method_named_by_a_string_is_refused_with_the_fix(pair, methods,
                                                          wrong):
    with pytest.raises(TypeError, match=wrong) as error:
        distiller(pair, methods=methods)
    assert "dict(type='FeatureImitation')" in str(error.value)


def test_attention_transfer_paths_as_a_string_are_refused_with_the_fix(pair):
    with pytest.raises(TypeError) as error:
        distiller(pair, methods=[dict(type='AttentionTransfer',
                                      paths='backbone.layer3')])
    message = str(error.value)
    assert "AttentionTransfer's `paths` is a list of module paths, got " \
        "the string 'backbone.layer3'" in message
    assert "paths=('backbone.layer3', )" in message


def test_tap_on_a_module_that_returns_a_tuple_is_named(pair):
    # a ResNet backbone returns one feature map per stage
    model = distiller(pair, methods=[dict(type='AttentionTransfer',
                                          paths=('backbone', ))])
    model.init_weights()
    inputs, samples = make_batch(model, shapes=[(3, 32, 32)] * 2)
    with pytest.raises(TypeError) as error:
        model.loss(inputs, samples)
    message = str(error.value)
    assert "AttentionTransfer reads one tensor from the student's module " \
        '`backbone`, but it returns a tuple of 4 items' in message
    assert 'submodules of `backbone`' in message
    assert '`backbone.layer3`' in message


def test_teacher_dtype_given_as_a_list_is_refused_with_the_fix(pair):
    with pytest.raises(TypeError) as error:
        distiller(pair, methods=[dict(type='FeatureImitation')],
                  teacher_dtype=['bfloat16'])
    message = str(error.value)
    assert "got the list ['bfloat16']" in message
    assert "['bfloat16', 'float16', 'float32']" in message
    assert "teacher_dtype='bfloat16'" in message


# ------------------------------------------------ d. command-line mistakes
def _benchmark_parse_args(monkeypatch, *argv):
    """``tools/benchmark.py``'s ``parse_args`` on ``argv``."""
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(REPO, 'tools', 'benchmark.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', ['benchmark.py', 'cfg.py', *argv])
    return tool.parse_args()


@pytest.mark.parametrize('argv,message', [
    (['--iters', '0'],
     'argument --iters: the timed rounds must be at least 1, got 0'),
    (['--random', '--image-size', '0', '64'],
     'argument --image-size: the image height and width must be at least '
     '1, got 0'),
], ids=['iters', 'image-size'])
def test_benchmark_refuses_zero_iterations_or_image_size(monkeypatch, capsys,
                                                         argv, message):
    with pytest.raises(SystemExit) as exit_:
        _benchmark_parse_args(monkeypatch, *argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


SRUN = '''#!/bin/sh
# stand-in for srun: records its arguments, runs nothing
echo "$*" >> "$SRUN_STUB_LOG"
'''


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_launch_without_scontrol_stops_before_srun(tmp_path,
                                                         monkeypatch, script):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(SRUN)
    (bin_dir / 'srun').chmod(0o755)
    path = os.pathsep.join([str(bin_dir), os.environ['PATH']])
    if shutil.which('scontrol', path=path):
        pytest.skip('this machine has scontrol on PATH')
    monkeypatch.delenv('MASTER_ADDR', raising=False)
    log = tmp_path / 'srun.log'
    env = dict(PATH=path, SRUN_STUB_LOG=str(log))
    args = ['bash', f'tools/{script}', 'part', 'job', 'cfg.py', 'fourth']
    proc = run_tool(args, env=env, check=False)
    assert proc.returncode != 0
    assert re.search(r'scontrol is not on PATH; each task needs it to find '
                     r'the master node', proc.stdout)
    assert 'set MASTER_ADDR' in proc.stdout
    assert not log.exists()  # srun never ran
    # with the master node given, scontrol is not needed
    run_tool(args, env=dict(env, MASTER_ADDR='node-1'))
    assert log.read_text().startswith('-p part --job-name=job')


def test_srun_without_scontrol_names_the_fix(monkeypatch) -> None:
    """Tasks started by srun directly (not through the scripts) on a node
    without ``scontrol`` failed with a bare FileNotFoundError."""
    from sea_kd.compat import cpu_distributed
    monkeypatch.setenv('PATH', '/nonexistent')
    env = dict(SLURM_PROCID='0', SLURM_NTASKS='2', SLURM_NODELIST='n[1-2]')
    with pytest.raises(RuntimeError, match='scontrol is not on PATH'):
        cpu_distributed._env_from_slurm(env)
    env['MASTER_ADDR'] = 'n1'
    cpu_distributed._env_from_slurm(env)  # no lookup needed
    assert env['RANK'] == '0' and env['MASTER_ADDR'] == 'n1'
