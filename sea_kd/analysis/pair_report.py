"""Compatibility report of a distillation config's teacher/student pair.

:func:`build_pair_report` builds the distiller (running its build-time pair
checks and loading the checkpoints), runs one training batch through
``loss``, evaluates the teacher on the first validation images and returns
what a user should look at before training: classes, neck levels with
their features' mean ``|F|``, dense prior layouts, RoI extractors, the
distillation modules (with FGD's attention concentration), the loss values
and the teacher's metrics. :func:`format_pair_report` renders it as text;
``tools/check_pair.py`` is the command line.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.evaluator import Evaluator
from mmengine.registry import DATASETS, EVALUATOR, init_default_scope
from mmengine.runner import Runner
from torch import Tensor, nn

from ..engine.teacher_evaluation import evaluate_teacher
from ..models.detectors.pair_checks import (class_identity_problem,
                                            dataset_class_problems,
                                            dense_layout_of, num_classes_of,
                                            prior_strides_of,
                                            teacher_checkpoint_classes)
from ..models.distillers import Distiller
from ..models.losses.focal_global_loss import fgd_attention
from ..models.methods.fgd import FGD
from ..models.teachers import is_backbone_teacher
from ..models.utils.category_masks import infer_strides


class PairCheckError(RuntimeError):
    """The pair cannot be distilled as configured.

    Args:
        stage: Where it failed: ``'build'`` (the distiller's build-time
            checks, the checkpoints), ``'classes'`` (a head has fewer
            classes than the data set) or ``'train_step'`` (the training
            batch).
        message: What is wrong and how to fix it.
    """

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _loss_value(value: Any) -> float:
    if isinstance(value, (list, tuple)):
        return float(sum(v.detach().float().sum() for v in value))
    return float(value.detach().float().sum())


def attention_cover(attention: Tensor, share: float = 0.9) -> Tensor:
    """How many entries of each attention row hold ``share`` of its sum.

    The smallest ``k`` such that the ``k`` largest entries of a row sum to
    at least ``share`` of the row's sum: ``k = 1`` when one entry holds
    that much, ``k`` equal to the row's length when attention is uniform
    and ``share`` is 1.

    Args:
        attention: (N, L) non-negative attention, one row per image.
        share: The share of the sum to cover, in (0, 1].

    Returns:
        (N, ) the counts, as a long tensor.
    """
    values = attention.detach().double().sort(dim=1, descending=True).values
    cumulative = values.cumsum(1)
    # a relative tolerance, so that a share of exactly 0.9 reached by sums
    # of floats is counted as reached
    need = share * cumulative[:, -1:] * (1 - 1e-6)
    return (cumulative < need).sum(1) + 1


def _fgd_attention_rows(distiller: Distiller,
                        teacher_feats: Sequence[Tensor]) -> List[dict]:
    """For each FGD method, how concentrated its attention is on each
    teacher level it distils: the share of the channels (and of the
    positions) that hold 90 % of ``A^C`` (``A^S``), averaged over the
    batch's images."""
    rows = []
    for name, method in distiller.methods.items():
        if not isinstance(method, FGD):
            continue
        levels = []
        for student_level, teacher_level in method.level_pairs:
            spatial, channel = fgd_attention(
                teacher_feats[teacher_level].detach().float(),
                method.temperature, method.relative_temperature)
            channels = attention_cover(channel).double()
            positions = attention_cover(spatial.flatten(1)).double()
            levels.append(dict(
                level=teacher_level,
                student_level=student_level,
                channels=float(channels.mean()),
                channel_share=float(channels.mean() / channel.shape[1]),
                position_share=float(positions.mean() /
                                     spatial[0].numel())))
        rows.append(dict(method=name, temperature=method.temperature,
                         relative=method.relative_temperature,
                         levels=levels))
    return rows


def _level_rows(detector: nn.Module, feats: Sequence[Tensor],
                input_shape: Sequence[int]) -> List[Dict[str, Any]]:
    """Channels, size, stride and mean ``|F|`` of every neck level on one
    batch.

    The stride is the dense prior generator's when it has one per level,
    otherwise inferred from the feature and padded input sizes.
    """
    sizes = [tuple(int(n) for n in f.shape[-2:]) for f in feats]
    strides = prior_strides_of(detector)
    source = 'prior generator'
    if strides is None or len(strides) != len(feats):
        strides = infer_strides(sizes, tuple(input_shape))
        source = 'feature size'
    return [
        dict(level=i, channels=int(f.shape[1]), size=list(size),
             stride=list(stride), stride_from=source,
             mean_abs=float(f.detach().float().abs().mean()))
        for i, (f, size, stride) in enumerate(zip(feats, sizes, strides))
    ]


def _prior_layouts(detector: nn.Module) -> Dict[str, Any]:
    """The dense heads' prior layouts, with the anchors' base sizes."""
    layouts = {}
    for head_name in ('bbox_head', 'rpn_head'):
        layout = dense_layout_of(detector, head_name)
        if layout is None:
            continue
        layout['strides'] = [list(x) for x in layout['strides']]
        generator = getattr(detector, head_name).prior_generator
        base_sizes = getattr(generator, 'base_sizes', None)
        if base_sizes is not None:
            layout['base_sizes'] = [
                list(b) if isinstance(b, (tuple, list)) else b
                for b in base_sizes]
        layouts[head_name] = layout
    return layouts


def _roi_extractors(detector: nn.Module) -> Dict[str, Any]:
    """Output size, featmap strides and channels of the RoI extractors."""
    roi_head = getattr(detector, 'roi_head', None)
    out = {}
    for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
        extractor = getattr(roi_head, name, None)
        layers = getattr(extractor, 'roi_layers', None)
        if extractor is None or not layers:
            continue
        size = layers[0].output_size
        out[name] = dict(
            type=type(extractor).__name__,
            roi_layer=type(layers[0]).__name__,
            output_size=list(size) if isinstance(size, (tuple, list))
            else [size, size],
            featmap_strides=list(extractor.featmap_strides),
            out_channels=int(extractor.out_channels))
    return out


def _detector_summary(detector: nn.Module, feats: Sequence[Tensor],
                      input_shape: Sequence[int]) -> Dict[str, Any]:
    return dict(
        type=type(detector).__name__,
        params=_num_params(detector),
        num_classes=None if is_backbone_teacher(detector) else
        num_classes_of(detector),
        neck=_level_rows(detector, feats, input_shape),
        dense_priors=_prior_layouts(detector),
        roi_extractors=_roi_extractors(detector))


def _distillation_modules(distiller: Distiller) -> List[Dict[str, Any]]:
    """The modules the distiller added next to the student, with the
    channels of their convolutions and linear layers."""
    rows = []
    children = [(method_name, name, module)
                for method_name, method in distiller.methods.items()
                for name, module in method.named_children()]
    for method_name, name, module in children:
        layers = []
        for sub_name, sub in module.named_modules(prefix=name):
            if isinstance(sub, nn.modules.conv._ConvNd):
                layers.append(dict(
                    name=sub_name, type=type(sub).__name__,
                    in_channels=sub.in_channels,
                    out_channels=sub.out_channels,
                    kernel_size=list(sub.kernel_size),
                    params=_num_params(sub)))
            elif isinstance(sub, nn.Linear):
                layers.append(dict(
                    name=sub_name, type='Linear',
                    in_channels=sub.in_features,
                    out_channels=sub.out_features, params=_num_params(sub)))
        row = dict(method=method_name, name=name, type=type(module).__name__,
                   params=_num_params(module), layers=layers)
        weight = getattr(module, 'loss_weight', None)
        if isinstance(weight, (int, float)):
            row['loss_weight'] = float(weight)
        rows.append(row)
    return rows


def _build_distiller(cfg: Config) -> Distiller:
    try:
        model = MODELS.build(copy.deepcopy(cfg.model))
    except Exception as err:  # every build error means: fix the config
        raise PairCheckError('build', f'{type(err).__name__}: {err}') \
            from err
    if not isinstance(model, Distiller):
        raise PairCheckError(
            'build', f'The config\'s model is a {type(model).__name__}, not '
            'a sea_kd distiller: check_pair reads distillation configs '
            "(model=dict(type='Distiller', teacher=..., student=..., "
            'teacher_ckpt=..., methods=[...])).')
    try:
        model.init_weights()  # loads student_ckpt
    except Exception as err:
        raise PairCheckError('build', f'{type(err).__name__}: {err}') \
            from err
    return model


def _teacher_metrics(distiller: Distiller, cfg: Config,
                     num_images: int) -> Optional[Dict[str, Any]]:
    """The teacher's metrics on the first ``num_images`` validation
    images (``None`` without a validation set in the config)."""
    if num_images <= 0 or not cfg.get('val_dataloader') or \
            not cfg.get('val_evaluator') or \
            is_backbone_teacher(distiller.teacher):
        return None  # a backbone teacher predicts nothing
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    dataset = DATASETS.build(loader_cfg.pop('dataset'))
    num_images = min(num_images, len(dataset))
    num_batches = None
    if num_images == len(dataset):
        pass
    elif isinstance(dataset, BaseDataset):
        dataset = dataset.get_subset(num_images)
    else:  # a dataset wrapper: whole batches from the start
        num_batches = math.ceil(num_images / loader_cfg.get('batch_size', 1))
    loader_cfg['dataset'] = dataset
    loader = Runner.build_dataloader(loader_cfg)
    evaluator_cfg = copy.deepcopy(cfg.val_evaluator)
    evaluator = EVALUATOR.build(evaluator_cfg) if isinstance(
        evaluator_cfg, dict) and 'metrics' in evaluator_cfg else \
        Evaluator(evaluator_cfg)
    metrics = evaluate_teacher(distiller, loader, evaluator,
                               num_batches=num_batches,
                               restrict_to_seen=True)
    if num_batches is not None:
        num_images = min(len(dataset), num_batches * loader.batch_size)
    return dict(images=num_images, metrics={
        k: (float(v) if isinstance(v, (int, float)) else str(v))
        for k, v in metrics.items()})


def build_pair_report(cfg: Config,
                      num_val_images: int = 20,
                      device: str = 'cpu') -> Dict[str, Any]:
    """Build the distiller of ``cfg``, run one training batch, report.

    Args:
        cfg: A distillation config (``model`` a sea_kd distiller) with a
            ``train_dataloader``; ``val_dataloader`` and ``val_evaluator``
            for the teacher's metrics.
        num_val_images: Number of validation images (the first ones) the
            teacher is evaluated on; 0 to skip.
        device: Where to run, e.g. ``'cpu'`` or ``'cuda'``.

    Returns:
        The report, a JSON-serialisable dict. ``problems`` lists what the
        build-time checks cannot see but makes the pair unusable (e.g. the
        data set's classes differ from the heads', or from the classes the
        teacher checkpoint was trained on, by name or order); empty when all
        is well.
        ``warnings`` lists what looks wrong without being one (e.g. a
        teacher without any detection).

    Raises:
        PairCheckError: When the distiller cannot be built (a pair check,
            a checkpoint), a head has fewer classes than the data set, or
            the training batch fails.
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    distiller = _build_distiller(cfg).to(device)

    loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader))
    data_batch = next(iter(loader))
    data = distiller.data_preprocessor(data_batch, True)
    inputs, samples = data['inputs'], data['data_samples']
    input_shape = [int(n) for n in inputs.shape[-2:]]

    with torch.no_grad():
        distiller.eval()
        student_feats = distiller.student.extract_feat(inputs)
        teacher_feats = distiller.teacher.extract_feat(
            distiller.teacher_inputs(inputs, samples))
    distiller.train()
    classes = list(loader.dataset.metainfo.get('classes') or [])
    trained_classes = teacher_checkpoint_classes(distiller)
    class_problems = dataset_class_problems(distiller, classes)
    if any(n < len(classes) for n, _ in class_problems):
        raise PairCheckError('classes', '\n'.join(
            text for _, text in class_problems))
    try:
        losses = distiller.loss(inputs, samples)
    except Exception as err:
        raise PairCheckError(
            'train_step', 'The training batch failed in the distiller\'s '
            f'loss: {type(err).__name__}: {err}') from err

    distill_prefixes = tuple(f'loss_{name}_'
                             for name in distiller.method_names)
    values = {name: _loss_value(value) for name, value in losses.items()
              if 'loss' in name}
    student_losses = {k: v for k, v in values.items()
                      if not k.startswith(distill_prefixes)}
    distill_losses = {k: v for k, v in values.items()
                      if k.startswith(distill_prefixes)}

    teacher = _detector_summary(distiller.teacher, teacher_feats,
                                input_shape)
    student = _detector_summary(distiller.student, student_feats,
                                input_shape)
    report: Dict[str, Any] = dict(
        distiller=dict(
            type=type(distiller).__name__,
            methods=[dict(name=name, type=type(method).__name__)
                     for name, method in distiller.methods.items()],
            record_parts=list(distiller.record_parts),
            teacher_parts=list(distiller.teacher_parts),
            teacher_ckpt=distiller.teacher_ckpt,
            student_ckpt=distiller.student_ckpt),
        classes=dict(dataset=classes, num_dataset=len(classes),
                     teacher=teacher['num_classes'],
                     student=student['num_classes'],
                     teacher_checkpoint=trained_classes),
        batch=dict(size=int(inputs.shape[0]), input_shape=input_shape),
        teacher=teacher,
        student=student,
        distillation_modules=_distillation_modules(distiller),
        fgd_attention=_fgd_attention_rows(distiller, teacher_feats),
        losses=dict(student=student_losses, distillation=distill_losses,
                    total=sum(values.values())),
        teacher_eval=_teacher_metrics(distiller, cfg, num_val_images),
        problems=[],
        warnings=[])

    problems = report['problems']
    problems.extend(text for _, text in class_problems)
    identity = class_identity_problem(trained_classes, classes,
                                      distiller.teacher_ckpt)
    if identity:
        problems.append(identity)
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        problems.append(f'Non-finite losses on the training batch: '
                        f'{", ".join(bad)}.')
    evaluation = report['teacher_eval']
    if trained_classes is None and \
            not is_backbone_teacher(distiller.teacher):
        report['warnings'].append(
            'The teacher checkpoint records no classes (meta '
            '`dataset_meta.classes`), so only their number was checked: '
            'make sure it was trained on the data set\'s classes in this '
            'order.')
    if evaluation is not None and not evaluation['metrics']:
        report['warnings'].append(
            f'The teacher gave no metrics on {evaluation["images"]} '
            'validation images (CocoMetric returns none when there is no '
            'detection above the score threshold): is teacher_ckpt a '
            'trained checkpoint of this teacher config?')
    return report


def _fmt_stride(stride: Sequence[float]) -> str:
    x, y = stride
    return f'{x:g}' if x == y else f'{x:g}x{y:g}'


def _fmt_list(values: Any) -> str:
    if isinstance(values, (list, tuple)):
        return '[' + ', '.join(_fmt_list(v) for v in values) + ']'
    return f'{values:.4g}' if isinstance(values, float) else str(values)


def format_pair_report(report: Dict[str, Any]) -> str:
    """The report as text for a terminal."""
    d, c = report['distiller'], report['classes']
    t, s = report['teacher'], report['student']
    methods = ', '.join(f"{m['name']} ({m['type']})" for m in d['methods'])
    lines = [
        f'Distiller: {d["type"]} (methods '
        f'{methods}'
        f'; student '
        f'records {", ".join(d["record_parts"])}, teacher computes '
        f'{", ".join(d["teacher_parts"])})',
        f'  teacher: {t["type"]}, {t["params"]:,} parameters, checkpoint '
        f'{d["teacher_ckpt"]}',
        f'  student: {s["type"]}, {s["params"]:,} parameters, checkpoint '
        f'{d["student_ckpt"] or "none (initialised)"}',
        f'Classes: data set {c["num_dataset"]} '
        f'({", ".join(c["dataset"])}); teacher head '
        f'{"none (a backbone)" if c["teacher"] is None else c["teacher"]}; '
        f'student head {c["student"]}',
        '  teacher checkpoint trained on: ' + (
            'not recorded' if c.get('teacher_checkpoint') is None else
            ('the same classes' if c['teacher_checkpoint'] == c['dataset']
             else ', '.join(c['teacher_checkpoint']))),
        f'Neck levels (batch of {report["batch"]["size"]}, input '
        f'{report["batch"]["input_shape"][0]}x'
        f'{report["batch"]["input_shape"][1]}):',
        f'  {"level":<7}{"teacher stride":>15}{"channels":>10}{"size":>9}'
        f'{"student stride":>16}{"channels":>10}{"size":>9}',
    ]
    for i in range(max(len(t['neck']), len(s['neck']))):
        cells = [f'  {i:<7}']
        for row, width in ((t['neck'], 15), (s['neck'], 16)):
            if i < len(row):
                r = row[i]
                cells.append(f'{_fmt_stride(r["stride"]):>{width}}'
                             f'{r["channels"]:>10}'
                             f'{"x".join(map(str, r["size"])):>9}')
            else:
                cells.append(f'{"-":>{width}}{"-":>10}{"-":>9}')
        lines.append(''.join(cells))
    for role, summary in (('teacher', t), ('student', s)):
        lines.append(f'  mean |F|, {role}: ' + ', '.join(
            f'{r["mean_abs"]:.3g}' for r in summary['neck']))
    for role, summary in (('teacher', t), ('student', s)):
        for head, layout in summary['dense_priors'].items():
            extra = ', '.join(
                f'{k} {_fmt_list(layout[k])}'
                for k in ('ratios', 'scales', 'octave_base_scale',
                          'scales_per_octave', 'base_sizes') if k in layout)
            strides = ', '.join(_fmt_stride(x) for x in layout['strides'])
            lines.append(
                f'Dense priors, {role} {head} ({layout["head"]}): strides '
                f'[{strides}], priors per location '
                f'{layout["priors_per_location"]}'
                + (f', {extra}' if extra else ''))
        for name, roi in summary['roi_extractors'].items():
            lines.append(
                f'RoI, {role} {name}: {roi["roi_layer"]} '
                f'{roi["output_size"][0]}x{roi["output_size"][1]}, featmap '
                f'strides {roi["featmap_strides"]}, {roi["out_channels"]} '
                'channels')
    lines.append('Distillation modules:')
    for row in report['distillation_modules'] or []:
        weight = f', loss_weight {row["loss_weight"]:g}' \
            if 'loss_weight' in row else ''
        lines.append(f'  {row["method"]}.{row["name"]}: {row["type"]}, '
                     f'{row["params"]:,} '
                     f'parameters{weight}')
        for layer in row['layers']:
            lines.append(f'    {layer["name"]}: {layer["type"]} '
                         f'{layer["in_channels"]} -> {layer["out_channels"]}'
                         f', {layer["params"]:,} parameters')
    if not report['distillation_modules']:
        lines.append('  none')
    for row in report.get('fgd_attention', []):
        kind = 'relative' if row['relative'] else 'absolute'
        lines.append(
            f'  {row["method"]} attention on the teacher (T '
            f'{row["temperature"]:g}, {kind}), share holding 90 % of it by '
            'teacher level (' + ', '.join(str(x['level']) for x in
                                          row['levels']) + '): channels '
            + ', '.join(f'{x["channel_share"]:.1%} ({x["channels"]:.3g})'
                        for x in row['levels'])
            + '; positions '
            + ', '.join(f'{x["position_share"]:.0%}' for x in row['levels']))
    losses = report['losses']
    lines.append('Losses on one training batch:')
    for group in ('student', 'distillation'):
        text = '  '.join(f'{k} {v:.4g}' for k, v in losses[group].items())
        lines.append(f'  {group}: {text or "none"}')
    lines.append(f'  total: {losses["total"]:.4g}')
    ev = report['teacher_eval']
    if ev is None:
        lines.append('Teacher evaluation: skipped')
    else:
        text = '  '.join(
            f'{k} {v:.3f}' if isinstance(v, float) else f'{k} {v}'
            for k, v in ev['metrics'].items())
        lines.append(f'Teacher on the first {ev["images"]} validation '
                     f'images: {text or "no metrics"}')
    for warning in report['warnings']:
        lines.append(f'Warning: {warning}')
    if report['problems']:
        lines.append('PROBLEMS:')
        lines.extend(f'  - {p}' for p in report['problems'])
    else:
        lines.append('No problems found.')
    return '\n'.join(lines)
