"""TeacherEvaluationHook in real Runner runs of a tiny distiller."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from sea_kd.engine.hooks import TeacherEvaluationHook

from ..helpers import (fi_distiller_cfg, first_images_test_metrics,
                       plain_test_metrics, run_cfg, scalars,
                       subset_annotations, tiny_teacher_cfg)

KEY = 'coco/bbox_mAP'


def _log_text(work_dir):
    (path, ) = glob.glob(osp.join(work_dir, '*', '*.log'))
    with open(path) as f:
        return f.read()


@pytest.fixture(scope='module')
def first_val_run(tiny_coco, tiny_teacher_ckpt, tmp_path_factory):
    """2 iterations, a validation after each, best checkpoint on the
    student's mAP."""
    work = str(tmp_path_factory.mktemp('first_val'))
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt), work,
                  max_iters=2, val_interval=1,
                  custom_hooks=[dict(type='TeacherEvaluationHook')])
    cfg.default_hooks.checkpoint.update(save_best=KEY, rule='greater')
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, work


def test_teacher_metrics_logged_once_after_the_first_validation(
        first_val_run):
    runner, work = first_val_run
    records = scalars(work)
    student = [r for r in records if KEY in r]
    teacher = [r for r in records if f'teacher/{KEY}' in r]
    assert [r['step'] for r in student] == [1, 2]
    assert len(teacher) == 1 and teacher[0]['step'] == 1
    # written after the first student validation, before the second
    assert records.index(student[0]) < records.index(teacher[0]) < \
        records.index(student[1])
    assert all(k.startswith('teacher/coco/') or k == 'step'
               for k in teacher[0])
    # the message hub holds one value per teacher metric
    values, counts = runner.message_hub.get_scalar(f'teacher/{KEY}').data
    assert len(values) == 1 and values[0] == teacher[0][f'teacher/{KEY}']
    log = _log_text(work)
    assert log.count('Teacher of Distiller on 4/4 validation '
                     'batches') == 1
    assert log.count(f'teacher/{KEY}:') == 1


def test_teacher_metrics_equal_a_plain_evaluation_of_the_teacher(
        first_val_run, tiny_coco, tiny_teacher_ckpt, tmp_path):
    _, work = first_val_run
    (logged, ) = [r for r in scalars(work) if f'teacher/{KEY}' in r]
    plain = plain_test_metrics(tiny_coco, tiny_teacher_cfg(),
                               tiny_teacher_ckpt, str(tmp_path / 'plain'))
    assert plain[KEY] > 0  # the comparison compares something
    assert {k[len('teacher/'):]: v for k, v in logged.items()
            if k != 'step'} == plain


def test_best_checkpoint_uses_the_student_metric(first_val_run):
    runner, work = first_val_run
    records = scalars(work)
    student = [r[KEY] for r in records if KEY in r]
    (teacher, ) = [r[f'teacher/{KEY}'] for r in records
                   if f'teacher/{KEY}' in r]
    assert teacher not in student  # otherwise the test proves nothing
    best = runner.message_hub.get_info('best_score')
    assert best == max(student)
    assert osp.basename(runner.message_hub.get_info('best_ckpt')) == \
        f'best_coco_bbox_mAP_iter_{1 + student.index(max(student))}.pth'


def test_before_train_on_the_first_batch_scores_those_images_only(
        tiny_coco, tiny_teacher_ckpt, tmp_path):
    work = str(tmp_path / 'before_train')
    cfg = run_cfg(
        tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt), work, max_iters=1,
        val_interval=10, custom_hooks=[dict(
            type='TeacherEvaluationHook', when='before_train',
            num_batches=1)])
    runner = Runner.from_cfg(cfg)
    first_ids = [s.img_id for s in next(iter(runner.val_dataloader))[
        'data_samples']]
    assert len(first_ids) == 4
    runner.train()
    (logged, ) = [r for r in scalars(work) if f'teacher/{KEY}' in r]
    assert logged['step'] == 0
    assert 'Teacher of Distiller on 1/4 validation batches' \
        in _log_text(work)

    # the same four images alone, evaluated by plain mmdet
    ann = subset_annotations(
        osp.join(tiny_coco, 'annotations', 'instances_train.json'),
        first_ids, str(tmp_path / 'first_batch.json'))
    plain = plain_test_metrics(tiny_coco, tiny_teacher_cfg(),
                               tiny_teacher_ckpt, str(tmp_path / 'plain'),
                               val_ann=ann)
    assert plain[KEY] > 0
    assert {k[len('teacher/'):]: v for k, v in logged.items()
            if k != 'step'} == plain


@pytest.mark.parametrize('workers', [0, 1])
def test_evaluating_the_teacher_leaves_the_runs_random_stream(
        workers, tiny_coco, tiny_teacher_ckpt, tmp_path):
    """Iterating the validation loader draws its workers' base seed; it
    does so on a stream of its own, and a persistent loader draws it again
    at the student's first validation, as it does without the hook: the
    student's later draws are those of the student alone (the seeds of
    tools/compare.py pair the runs)."""
    def runner_with(hooks, name):
        cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt),
                      str(tmp_path / name), max_iters=1,
                      custom_hooks=hooks)
        cfg.val_dataloader.update(num_workers=workers,
                                  persistent_workers=workers > 0)
        return Runner.from_cfg(cfg)

    alone = runner_with([], 'alone')
    torch.manual_seed(5)
    iter(alone.val_loop.dataloader)  # the first validation starts
    want = torch.rand(3)
    runner = runner_with([dict(type='TeacherEvaluationHook',
                               when='before_train', num_batches=1)],
                         'hook')
    (hook, ) = [h for h in runner.hooks
                if isinstance(h, TeacherEvaluationHook)]
    torch.manual_seed(5)
    hook._evaluate_once(runner)
    assert hook.metrics  # it did evaluate the teacher
    iter(runner.val_loop.dataloader)
    assert torch.equal(torch.rand(3), want)


def test_disabled_hook_evaluates_nothing(tiny_coco, tiny_teacher_ckpt,
                                         tmp_path):
    work = str(tmp_path / 'disabled')
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt), work,
                  max_iters=1, val_interval=1, custom_hooks=[dict(
                      type='TeacherEvaluationHook', enable=False)])
    Runner.from_cfg(cfg).train()
    records = scalars(work)
    assert any(KEY in r for r in records)
    assert not any(k.startswith('teacher/') for r in records for k in r)


def test_plain_detector_is_refused_with_the_fix(tiny_coco,
                                                tiny_teacher_ckpt,
                                                tmp_path):
    cfg = run_cfg(tiny_coco, tiny_teacher_cfg(), str(tmp_path / 'plain'),
                  max_iters=1, custom_hooks=[dict(
                      type='TeacherEvaluationHook')])
    runner = Runner.from_cfg(cfg)
    with pytest.raises(TypeError, match='not a sea_kd distiller') as err:
        runner.train()
    assert 'RetinaNet' in str(err.value)
    assert 'remove TeacherEvaluationHook' in str(err.value)


@pytest.mark.parametrize('kwargs, message', [
    (dict(when='every_val'), r"when must be one of \(.*\), got 'every_val'"),
    (dict(num_batches=0), 'positive int'),
    (dict(prefix='a/b'), 'prefix'),
    (dict(prefix='val_teacher'), "does not start with 'train'"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TeacherEvaluationHook(**kwargs)


def test_resumed_run_does_not_evaluate_the_teacher_again(
        tiny_coco, tiny_teacher_ckpt, tmp_path):
    work = str(tmp_path / 'resume')
    hooks = [dict(type='TeacherEvaluationHook')]
    # iter_2.pth is saved after the first validation (at iteration 1)
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt), work,
                  max_iters=2, val_interval=1, custom_hooks=hooks)
    Runner.from_cfg(cfg).train()
    first = [r for r in scalars(work) if f'teacher/{KEY}' in r]
    assert len(first) == 1

    resumed = str(tmp_path / 'resumed')
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt), resumed,
                  max_iters=3, val_interval=1, custom_hooks=hooks,
                  resume=True, load_from=osp.join(work, 'iter_2.pth'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3
    # the teacher's metrics came back with the checkpoint's message hub
    values, _ = runner.message_hub.get_scalar(f'teacher/{KEY}').data
    assert list(values) == [first[0][f'teacher/{KEY}']]
    assert not any(f'teacher/{KEY}' in r for r in scalars(resumed))
    text = _log_text(resumed)
    assert 'resumed epoch: 0, iter: 2' in text
    assert 'Iter(val) [4/4]    coco/bbox_mAP' in text
    assert 'Teacher of' not in text


@pytest.mark.slow
def test_two_processes_give_the_single_process_metrics(
        tiny_coco, tiny_teacher_ckpt, tmp_path):
    """Under DDP each process runs its shard; the metrics of the whole set
    and of the first batch of every process equal plain evaluations."""
    import sys

    from ...tools.helpers import free_port, run_tool
    work = str(tmp_path / 'ddp')
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt), work,
                  max_iters=1, val_interval=1, custom_imports=dict(
                      imports=['sea_kd'], allow_failed_imports=False),
                  custom_hooks=[
                      dict(type='TeacherEvaluationHook'),
                      dict(type='TeacherEvaluationHook', num_batches=1,
                           prefix='teacher_quick')])
    cfg_file = str(tmp_path / 'ddp_cfg.py')
    cfg.dump(cfg_file)
    out = run_tool(['bash', 'tools/dist_train.sh', cfg_file, '2',
                    '--work-dir', work],
                   env=dict(PYTHON=sys.executable, PORT=str(free_port()),
                            OMP_NUM_THREADS='1'))
    assert 'Distributed training: True' in out.stdout
    records = scalars(work)
    (logged, ) = [r for r in records if f'teacher/{KEY}' in r]
    (logged_quick, ) = [r for r in records if f'teacher_quick/{KEY}' in r]

    # 16 images, 2 processes, batches of 4: the whole set, and the first
    # batch of each process (images 0, 2, 4, 6 and 1, 3, 5, 7)
    plain = plain_test_metrics(tiny_coco, tiny_teacher_cfg(),
                               tiny_teacher_ckpt, str(tmp_path / 'plain'))
    assert {k[len('teacher/'):]: v for k, v in logged.items()
            if k.startswith('teacher/')} == plain
    quick = first_images_test_metrics(tiny_coco, tiny_teacher_ckpt,
                                      str(tmp_path), 8)
    assert {k[len('teacher_quick/'):]: v for k, v in logged_quick.items()
            if k != 'step'} == quick
    assert quick != plain
