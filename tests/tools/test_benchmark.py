"""tools/benchmark.py prints the three phases and the overhead ratio."""
import os.path as osp
import re

import pytest

from .helpers import DEMO, data_options, python, run_tool

pytestmark = pytest.mark.slow


def test_benchmark_prints_phases_and_ratios(synthetic_root,
                                            retina_teacher_ckpt):
    out = run_tool(python(
        'tools/benchmark.py',
        osp.join(DEMO, 'fi_retinanet_r18_to_r18-w16_synthetic.py'),
        '--iters', '2', '--warmup', '1', '--batches', '2', '--cfg-options',
        *data_options(synthetic_root),
        f'model.teacher_ckpt={retina_teacher_ckpt}')).stdout
    for phase in ('student step (a)', 'teacher forward (b)',
                  'distiller step (c)'):
        assert re.search(re.escape(phase) + r'\s+\d+\.\d\s+-?\d+\.\d', out)
    # timings are reported, not asserted: only check a ratio is printed
    ratio = re.search(r'ratio c / \(a \+ b\)\s+(\d+\.\d+)', out)
    assert ratio and float(ratio.group(1)) > 0


def test_benchmark_refuses_a_plain_detector_config(synthetic_root):
    out = run_tool(python(
        'tools/benchmark.py', osp.join(DEMO, 'retinanet_r18_synthetic.py'),
        '--cfg-options', *data_options(synthetic_root)), check=False)
    assert out.returncode != 0
    assert 'is not a distiller config' in out.stdout


def test_roi_align_benchmark_prints_both_implementations_per_stride():
    out = run_tool(python(
        'tools/benchmark_roi_align.py', '--regions', '16', '--channels', '4',
        '--size', '64', '--batch', '2', '--iters', '1')).stdout
    rows = re.findall(r'^\s+(\d+)((?:\s+\d+\.\d+){4})\s+\d+\.\d+\s+(\S+)$',
                      out, flags=re.M)
    assert [int(r[0]) for r in rows] == [4, 8, 16, 32, 64]
    # the two implementations agree on every level
    assert all(float(r[2]) < 1e-4 for r in rows)


def test_random_mode_needs_no_data_or_weights(tmp_path):
    # the own-data config: its data set and teacher checkpoint do not exist
    out = run_tool(python(
        'tools/benchmark.py',
        osp.join('configs', 'own_data',
                 'fi_retinanet_r18_to_r18-w16_my-dataset.py'),
        '--random', '--image-size', '96', '128', '--batch-size', '3',
        '--num-boxes', '4', '--iters', '1', '--warmup', '0')).stdout
    assert 'batch 3 x (96, 128)' in out
    assert 'random weights and images (4 boxes per image)' in out
    assert re.search(r'ratio c / \(a \+ b\)\s+\d+\.\d+', out)
    # outside --random the data loader decides the size
    bad = run_tool(python(
        'tools/benchmark.py',
        osp.join(DEMO, 'fi_retinanet_r18_to_r18-w16_synthetic.py'),
        '--image-size', '96', '128'), check=False)
    assert bad.returncode != 0
    assert 'apply to --random only' in bad.stdout


def test_teacher_dtype_check_reports_each_term(synthetic_root,
                                               retina_teacher_ckpt):
    out = run_tool(python(
        'tools/teacher_dtype_check.py',
        osp.join(DEMO, 'fi-adl_retinanet_r18_to_r18-w16_synthetic.py'),
        '--dtype', 'bfloat16', '--batches', '1', '--cfg-options',
        *data_options(synthetic_root),
        f'model.teacher_ckpt={retina_teacher_ckpt}')).stdout
    summary = out.split('largest relative difference')[1]
    found = dict(re.findall(r'(loss_\w+)\s+(\d\.\d+e[-+]\d+)', summary))
    assert set(found) == {'loss_fi_feat', 'loss_adl_cls'}, summary
    # a bfloat16 trunk changes the terms, but by far less than they are
    assert all(0 < float(v) < 0.1 for v in found.values()), found


def test_scaling_curves_measure_each_value_and_resume(tmp_path):
    """Two class counts on the own-data config (no data, no weights): a
    table, a JSON per value with the class count applied to the heads, a
    plot; a second run measures nothing again."""
    import json
    config = osp.join('configs', 'own_data',
                      'fi_retinanet_r18_to_r18-w16_my-dataset.py')
    args = ['tools/scaling_curves.py', config, '--axis', 'num-classes',
            '--values', '3', '12', '--iters', '1', '--warmup', '0',
            '--batch-size', '2', '--out-dir', tmp_path]
    out = run_tool(python(*args)).stdout
    stem = tmp_path / 'fi_retinanet_r18_to_r18-w16_my-dataset_num-classes'
    rows = re.findall(r'^\| (\d+) \|.*\| (\d+\.\d+) \| (\d+\.\d+|—) \|$',
                      out, flags=re.M)
    assert [r[0] for r in rows] == ['3', '12']
    for value in (3, 12):
        found = json.loads((tmp_path / f'{stem.name}_{value}.json')
                           .read_text())
        assert found['num_classes'] == value
        assert found['time_ratio'] > 0
    assert (tmp_path / f'{stem.name}.png').stat().st_size > 0
    again = run_tool(python(*args)).stdout
    assert 'num-classes = ' not in again  # nothing measured again
    bad = run_tool(python('tools/benchmark.py', config, '--num-classes',
                          '3'), check=False)
    assert bad.returncode != 0 and 'apply to --random only' in bad.stdout


def test_scaling_curves_vary_a_config_value(tmp_path):
    """--axis cfg-option --key K: each value reaches the benchmark as
    --cfg-options K=value and names the table's column and the files; a
    key without the axis is refused."""
    import json
    config = osp.join('configs', 'own_data',
                      'fi_retinanet_r18_to_r18-w16_my-dataset.py')
    key = 'model.methods.0.loss_feat.loss_weight'
    args = ['tools/scaling_curves.py', config, '--axis', 'cfg-option',
            '--key', key, '--values', '1', '3', '--iters', '1',
            '--warmup', '0', '--batch-size', '1', '--out-dir', tmp_path]
    out = run_tool(python(*args)).stdout
    assert f'| {key} | batch × size | (a) ms' in out
    stem = f'fi_retinanet_r18_to_r18-w16_my-dataset_{key}'
    for value in (1, 3):
        found = json.loads((tmp_path / f'{stem}_{value}.json').read_text())
        assert found['cfg_options'] == {key: value}
    assert (tmp_path / f'{stem}.png').stat().st_size > 0
    bad = run_tool(python('tools/scaling_curves.py', config, '--axis',
                          'num-boxes', '--key', key, '--values', '1'),
                   check=False)
    assert bad.returncode != 0 and '--key names the config value' in \
        bad.stdout


def test_scaling_curves_several_configs_on_image_size_and_batch(tmp_path):
    """Several configs in one run: a JSON per config and value at the size
    asked (``S`` or ``HxW``), one table per config, one plot named by
    --name; the batch size is an axis too; a value measured with other
    settings is measured again, the others are reused."""
    import json
    fi = osp.join('configs', 'own_data',
                  'fi_retinanet_r18_to_r18-w16_my-dataset.py')
    pkd = osp.join(DEMO, 'pkd_retinanet_r18_to_r18-w16_synthetic.py')
    common = ['--iters', '1', '--warmup', '0', '--out-dir', tmp_path]
    out = run_tool(python('tools/scaling_curves.py', fi, pkd, '--name',
                          'two', '--axis', 'image-size', '--values', '64',
                          '64x96', '--batch-size', '1', *common)).stdout
    for config in (fi, pkd):
        stem = osp.splitext(osp.basename(config))[0]
        for label, size in (('64', [64, 64]), ('64x96', [64, 96])):
            found = json.loads(
                (tmp_path / f'{stem}_image-size_{label}.json').read_text())
            assert found['image_size'] == size and found['batch'] == 1
        assert f'`{osp.basename(config)}`, image-size' in out
        # the summary: a row per config, time / memory at each value
        assert re.search(rf'^\| `{stem}` \| \d\.\d{{3}} / \d+\.\d\d \| '
                         r'\d\.\d{3} / \d+\.\d\d \|$', out, flags=re.M)
    summary = json.loads((tmp_path / 'two_image-size.json').read_text())
    assert {k: sorted(v) for k, v in summary.items()} == {
        fi: ['64', '64x96'], pkd: ['64', '64x96']}
    assert (tmp_path / 'two_image-size.png').stat().st_size > 0

    batch = ['tools/scaling_curves.py', fi, '--axis', 'batch-size',
             '--values', '1', '2', '--image-size', '64', '64', *common]
    run_tool(python(*batch))
    stem = tmp_path / 'fi_retinanet_r18_to_r18-w16_my-dataset_batch-size'
    for value in (1, 2):
        path = stem.with_name(f'{stem.name}_{value}.json')
        found = json.loads(path.read_text())  # read_text closes the file
        assert found['batch'] == value and found['image_size'] == [64, 64]
    # the value of 2 was measured with other settings: only it runs again
    record = json.loads(stem.with_name(f'{stem.name}_2.json').read_text())
    record['request']['command'][record['request']['command'].index(
        '--iters') + 1] = '5'
    with open(f'{stem}_2.json', 'w') as f:
        json.dump(record, f)
    again = run_tool(python(*batch)).stdout
    assert 'batch-size = 2] measured before with other settings' in again
    assert 'batch-size = 1]' not in again


def test_scaling_curves_measure_again_after_a_config_change(tmp_path):
    """The cached figures are those of the resolved config: a change in a
    file the config inherits from is measured again, a comment is not."""
    base = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'configs', 'own_data',
        'fi_retinanet_r18_to_r18-w16_my-dataset.py')
    (tmp_path / 'middle.py').write_text(f'_base_ = {base!r}\n')
    (tmp_path / 'child.py').write_text("_base_ = './middle.py'\n")
    args = ['tools/scaling_curves.py', tmp_path / 'child.py', '--axis',
            'batch-size', '--values', '1', '--image-size', '64', '64',
            '--iters', '1', '--warmup', '0', '--out-dir', tmp_path / 'out']
    assert 'batch-size = 1]' in run_tool(python(*args)).stdout
    (tmp_path / 'child.py').write_text(
        "_base_ = './middle.py'\n# a comment\n")
    assert 'batch-size = 1]' not in run_tool(python(*args)).stdout
    (tmp_path / 'middle.py').write_text(
        f'_base_ = {base!r}\n'
        'default_hooks = dict(logger=dict(interval=7))\n')
    again = run_tool(python(*args)).stdout
    assert 'batch-size = 1] measured before with other settings' in again


@pytest.mark.parametrize('argv,message', [
    (['--axis', 'image-size', '--values', '64x'], 'an image size is S or HxW'),
    (['--axis', 'batch-size', '--values', '0'], 'are positive integers'),
    (['--axis', 'batch-size', '--values', '2', '--batch-size', '2'],
     '--batch-size fixes what --axis batch-size varies'),
    (['--axis', 'image-size', '--values', '64', '--image-size', '64', '64'],
     '--image-size fixes what --axis image-size varies'),
    (['--extra', '--axis', 'num-boxes', '--values', '4'], 'name it with'),
    (['--axis', 'image-size', '--values', '64', '64x64'],
     'names a value twice'),
    (['--axis', 'num-boxes', '--values', '4', '--batch-size', '0'],
     'must be positive'),
    (['--same', '--name', 'x', '--axis', 'num-boxes', '--values', '4'],
     'the same file name'),
])
def test_scaling_curves_refuse_bad_options(argv, message):
    fi = osp.join('configs', 'own_data',
                  'fi_retinanet_r18_to_r18-w16_my-dataset.py')
    pkd = osp.join(DEMO, 'pkd_retinanet_r18_to_r18-w16_synthetic.py')
    argv = [pkd if a == '--extra' else fi if a == '--same' else a
            for a in argv]
    bad = run_tool(python('tools/scaling_curves.py', fi, *argv),
                   check=False)
    assert bad.returncode != 0 and message in bad.stdout, bad.stdout


def test_a_method_with_passes_of_its_own_gets_its_own_limit(tmp_path):
    """CrossKD runs the teacher head's tail on the student's features: the
    tool times those passes alone, (e), and prints c / (a + b + e). Every
    distiller gets (d), its terms alone, and their share d / (a + b)."""
    import json
    out_json = tmp_path / 'fi.json'
    out = run_tool(python(
        'tools/benchmark.py',
        osp.join(DEMO, 'crosskd_retinanet_r18_to_r18-w16_synthetic.py'),
        '--random', '--image-size', '64', '64', '--batch-size', '2',
        '--iters', '1', '--warmup', '0')).stdout
    times = {k: float(v) for _, k, v in re.findall(
        r'^(.*?) \((\w)\)\s+(\d+\.\d)\s+-?\d+\.\d', out, flags=re.M)}
    assert set(times) == {'a', 'b', 'c', 'd', 'e'}, out
    # each part measured (no order asserted: one round of timings on a
    # shared machine is noise-bound)
    assert all(t > 0 for t in times.values())
    assert re.search(r'ratio c / \(a \+ b \+ e\)\s+\d+\.\d+', out)
    # a method without passes of its own has no (e)
    fi = run_tool(python(
        'tools/benchmark.py',
        osp.join('configs', 'own_data',
                 'fi_retinanet_r18_to_r18-w16_my-dataset.py'),
        '--random', '--image-size', '64', '64', '--batch-size', '2',
        '--iters', '1', '--warmup', '0', '--json-out', out_json,
        '--profile', '3', '--device', 'cpu')).stdout
    assert 'own passes (e)' not in fi and '(a + b + e)' not in fi
    # every distiller gets its terms' share (d) and the rest
    fi_times = {k: float(v) for _, k, v in re.findall(
        r'^(.*?) \((\w)\)\s+(\d+\.\d)\s+-?\d+\.\d', fi, flags=re.M)}
    assert set(fi_times) == {'a', 'b', 'c', 'd'}, fi
    assert re.search(r'share d / \(a \+ b\)\s+-?\d+\.\d+', fi)
    found = json.loads(out_json.read_text())
    t = found['time_s']
    assert found['terms_share'] == pytest.approx(t['d'] / (t['a'] + t['b']))
    assert t['d'] > 0 and t['e'] is None
    # the forward halves, each inside its step
    forward = found['forward_s']
    assert set(forward) == {'a', 'c', 'd'}
    assert all(0 < forward[k] <= t[k] for k in forward)
    assert re.search(r'of it in forward\s+-?\d+\.\d+', fi)
    assert re.search(r'of it in backward\s+-?\d+\.\d+', fi)
    # --profile: the forward stages of one (c) (the networks' two take
    # time), and
    # the operators of one call of (d), an operator of FI's convolution
    # (its 1x1 projector: aten::convolution, or the kernels it runs,
    # whichever of them rank first on the machine) among them
    stages = dict(re.findall(r'^(sea_kd\.\w+)\s+(\d+\.\d)$', fi, re.M))
    assert {'sea_kd.teacher_before_student',
            'sea_kd.student_forward_and_loss', 'sea_kd.method_terms',
            'sea_kd.loss_controls'} <= set(stages), fi
    # the config is balanced (GradientShareBalance): its stage is timed
    assert 'sea_kd.balance_observe' in stages
    assert float(stages['sea_kd.teacher_before_student']) > 0
    assert float(stages['sea_kd.student_forward_and_loss']) > 0
    listed = fi.split('top 3 operators by self time:')[1]
    assert 'Self CPU' in listed and 'conv' in listed, listed
    assert re.search(r'rest \(c-a-b-d\)/\(a\+b\)\s+-?\d+\.\d+', fi)
