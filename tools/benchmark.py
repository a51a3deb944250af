"""Cost of distillation: time and peak memory of one training step.

    python tools/benchmark.py CONFIG [--iters 10] [--warmup 3]
        [--device cpu|cuda] [--cfg-options k=v ...] [--profile N]
    python tools/benchmark.py COCO_CONFIG --random [--batch-size N]
        [--image-size H W] [--num-boxes K] [--num-classes C]
        [--json-out FILE] [--profile N]

On the same preloaded batches, in one process, it measures
  (a) the student's plain training step (forward, loss, backward, SGD step),
  (b) the teacher's inference forward (``mode='tensor'``, no grad),
  (c) the distiller's training step,
and prints the ratio c / (a + b) for time and for peak memory. To show
where c - (a + b) goes, it also measures
  (d) every method's terms alone, forward and backward, on a step's record
      cut from the step's graph (``sea_kd.analysis.step_parts``),
and prints their share of the limit, d / (a + b), and the rest,
(c - a - b - d) / (a + b), split into its forward and backward halves
(each of (a), (c) and (d) also times its forward alone; with balancing,
the balance's gradient measurement counts in (c)'s forward). The rest is
the step's other distillation work: the capture of features and outputs,
the teacher's parts run for the methods before their terms, the loss
controls and balancing, the methods' parameter updates. Where a method
runs networks of its own by design (CrossKD the teacher head's tail
on the student's features, KD-DETR both decoders on its points:
``DistillMethod.own_passes``), it also measures
  (e) those passes' forward and backward, alone (part of (d)),
and prints the method's own limit, c / (a + b + e). ``--profile N``
profiles one call of (c), giving the time of each forward stage of the
distiller step (``sea_kd.models.distillers.distiller.STAGE_LABELS``: the
teacher's parts, the student's forward and loss with its capture, the
methods' terms, ...), and one call of (d), listing the N operators with
the most self time in the terms. Times are
medians over ``--iters`` rounds after ``--warmup`` ones; each round runs
(a), (b), (c), (d) (and (e)) once in turn, so that a change of machine load
affects all alike (CUDA is synchronised around each call).

``--random`` needs neither the data set nor any pretrained weight (for the
COCO configs): random weights (no ``Pretrained`` initialisation, a random
teacher loaded through ``teacher_ckpt``) and random images of the config's
largest training scale, its training batch size and its student's classes,
with ``--num-boxes`` random boxes per image
(``sea_kd.analysis.random_weights``); ``--num-classes`` sets every head's
class count of both models. ``--json-out`` writes the figures for
``tools/scaling_curves.py``. Peak memory is measured
afterwards, phase by phase. Peak memory is ``torch.cuda.max_memory_allocated``
on CUDA; on CPU it is the peak resident-set growth during the phase, sampled
every millisecond (an approximation: the allocator may keep freed memory).
"""
import argparse
import copy
import ctypes
import gc
import json
import os
import statistics
import tempfile
import threading
import time
from typing import Callable

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch.autograd import DeviceType

import sea_kd  # noqa: F401
from sea_kd.analysis.random_weights import (random_batch,
                                            random_weights_config,
                                            training_batch_size,
                                            training_image_size)
from sea_kd.analysis.step_parts import (has_own_passes, own_passes_step,
                                        record_of_step, terms_backward,
                                        terms_forward)
from sea_kd.models.detectors.pair_checks import num_classes_of
from sea_kd.models.distillers import Distiller
from sea_kd.models.distillers.distiller import STAGE_LABELS


def at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse ``type``: an int of at least ``minimum``.

    Args:
        minimum: The smallest value accepted.
        what: What the option counts, for the message.

    Returns:
        The converter; a smaller value stops argparse with
        ``argument --OPTION: must be at least ...``, naming the value.
    """

    def convert(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f'{what} must be at least {minimum}, got {value}')
        return value

    convert.__name__ = 'int'  # argparse's "invalid int value: ..."
    return convert


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a distiller config')
    parser.add_argument('--iters', type=at_least(1, 'the timed rounds'),
                        default=10)
    parser.add_argument('--warmup', type=at_least(0, 'the warm-up rounds'),
                        default=3)
    parser.add_argument('--batches', type=at_least(1, 'the batches'),
                        default=4, help='distinct batches cycled through')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument(
        '--random', action='store_true',
        help='random weights and random images at the config\'s training '
        'scale: no data set or pretrained weights needed')
    parser.add_argument('--batch-size', type=at_least(1, 'the batch size'),
                        help='--random: images per step (default: the '
                        'config\'s training batch size)')
    parser.add_argument('--image-size',
                        type=at_least(1, 'the image height and width'),
                        nargs=2, metavar=('H', 'W'),
                        help='--random: image size (default: the largest '
                        'scale of the training pipeline)')
    parser.add_argument('--num-boxes', type=at_least(0, 'the boxes per image'),
                        default=8,
                        help='--random: ground-truth boxes per image')
    parser.add_argument('--num-classes', type=at_least(1, 'the classes'),
                        help='--random: classes of every head of both '
                        'models (default: the configs\')')
    parser.add_argument('--json-out', help='write the figures to this file')
    parser.add_argument(
        '--profile', type=at_least(1, 'the operators listed'),
        metavar='N', help='after the measurements, profile one call of (c) '
        'and of (d) (torch.profiler): the time of each forward stage of '
        'the distiller step, and the N operators with the most self time '
        'in the methods\' terms, forward and backward')
    args = parser.parse_args()
    if not args.random and (args.batch_size or args.image_size
                            or args.num_classes):
        parser.error('--batch-size, --image-size and --num-classes apply to '
                     '--random only (otherwise the config\'s data loader '
                     'decides).')
    return args


class PeakRSS:
    """Peak resident-set growth of this process while the block runs."""

    def __init__(self):
        self.page = os.sysconf('SC_PAGE_SIZE')
        self.peak = 0

    def _rss(self):
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __enter__(self):
        gc.collect()
        try:
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        except OSError:
            pass
        self.start = self._rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth(self):
        return self.peak - self.start


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What waits for the device's queued work (nothing on the CPU)."""
    return torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)


def measure_times(steps, batches, args):
    """Median seconds per call of each step, the steps run in turn, and of
    the forward half of each step that reports it.

    One call of each step per round, rounds repeated ``--iters`` times, so
    that a change of machine load during the run affects all steps alike.
    A step that returns a number returns its forward's seconds.

    Returns:
        tuple: ``({name: seconds}, {name: forward seconds})``.
    """
    sync = synchronizer(torch.device(args.device))
    for i in range(args.warmup):
        for step in steps.values():
            step(batches[i % len(batches)])
    times = {name: [] for name in steps}
    forwards = {name: [] for name in steps}
    for i in range(args.iters):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            forward = step(batches[i % len(batches)])
            sync()
            times[name].append(time.perf_counter() - t0)
            if isinstance(forward, float):
                forwards[name].append(forward)
    return ({name: statistics.median(t) for name, t in times.items()},
            {name: statistics.median(t) for name, t in forwards.items()
             if t})


def profiled(call: Callable, batch: dict, device: torch.device):
    """``torch.profiler`` events of one call on the batch."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        call(batch)
        synchronizer(device)()
    return prof.key_averages()


def print_profile(distiller_step: Callable, method_terms: Callable,
                  batch: dict, device: torch.device, rows: int) -> None:
    """The forward stages of one (c) and the costliest operators of one
    (d)."""
    # one event per label on the CPU side (on CUDA a label also comes back
    # as a device-side annotation without CPU time); its device time sums
    # the kernels launched inside the range
    events = {e.key: e for e in profiled(distiller_step, batch, device)
              if e.device_type == DeviceType.CPU}
    print('\none distiller step (c), its forward stages:')
    print(f'{"stage":<40}{"CPU (ms)":>12}'
          + (f'{"device (ms)":>14}' if device.type == 'cuda' else ''))
    for label in STAGE_LABELS.values():
        event = events.get(label)
        if event is None:
            continue  # a stage this distiller does not run
        line = f'{label:<40}{event.cpu_time_total / 1e3:>12.1f}'
        if device.type == 'cuda':
            line += f'{event.device_time_total / 1e3:>14.1f}'
        print(line)
    sort_by = 'self_device_time_total' if device.type == 'cuda' else \
        'self_cpu_time_total'
    print(f'\nthe methods\' terms (d), one call, top {rows} operators by '
          'self time:')
    print(profiled(method_terms, batch, device).table(sort_by=sort_by,
                                                      row_limit=rows))


def measure_memory(step, batches, args):
    """Peak memory in bytes of a few calls of ``step``."""
    device = torch.device(args.device)
    calls = max(2, min(args.iters, len(batches)))
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for i in range(calls):
            step(batches[i % len(batches)])
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with PeakRSS() as rss:
        for i in range(calls):
            step(batches[i % len(batches)])
    return rss.growth


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS
    tmp = None
    if args.random:
        if 'student' not in cfg.model:
            raise TypeError(f'{args.config} is not a distiller config.')
        tmp = tempfile.TemporaryDirectory()
        cfg = random_weights_config(cfg, tmp.name,
                                    num_classes=args.num_classes)
    model = MODELS.build(cfg.model)
    if not isinstance(model, Distiller):
        raise TypeError(f'{args.config} is not a distiller config (its model '
                        f'is a {type(model).__name__}).')
    model.init_weights()
    device = torch.device(args.device)
    model.to(device).train()
    student = copy.deepcopy(model.student).train()
    teacher = model.teacher

    if args.random:
        size = tuple(args.image_size or training_image_size(cfg))
        batch_size = args.batch_size or training_batch_size(cfg)
        # one batch: the random images are the same in every call
        batches = [random_batch(model, batch_size, size, args.num_boxes)]
        tmp.cleanup()  # the random teacher is loaded
    else:
        loader = Runner.build_dataloader(cfg.train_dataloader)
        batches = []
        for data in loader:
            batches.append(model.data_preprocessor(data, True))
            if len(batches) == args.batches:
                break

    sync = synchronizer(device)

    def train_step(net):
        optim = torch.optim.SGD(
            [p for p in net.parameters() if p.requires_grad], lr=1e-5)

        def step(batch):
            t0 = time.perf_counter()
            losses = net.loss(batch['inputs'], batch['data_samples'])
            loss, _ = net.parse_losses(losses)
            sync()
            forward = time.perf_counter() - t0
            optim.zero_grad()
            loss.backward()
            optim.step()
            return forward

        return step

    @torch.no_grad()
    def teacher_forward(batch):
        # in its own normalisation, as the distiller feeds it
        inputs = model.teacher_inputs(batch['inputs'], batch['data_samples'])
        teacher(inputs, batch['data_samples'], mode='tensor')

    steps = {
        'student step (a)': train_step(student),
        'teacher forward (b)': teacher_forward,
        'distiller step (c)': train_step(model),
    }
    # (d) the methods' terms and (e) their own passes, on each batch's
    # record of one step (kept for the whole run: resident memory, but the
    # peaks are measured above each phase's start)
    records = {id(b): record_of_step(model, b['inputs'], b['data_samples'])
               for b in batches}

    def method_terms(batch):
        t0 = time.perf_counter()
        terms = terms_forward(model, records[id(batch)])
        sync()
        forward = time.perf_counter() - t0
        terms_backward(terms)
        return forward

    steps['method terms (d)'] = method_terms
    if has_own_passes(model):
        steps['own passes (e)'] = \
            lambda batch: own_passes_step(model, records[id(batch)])
    times, forwards = measure_times(steps, batches, args)
    memory = {name: measure_memory(step, batches, args)
              for name, step in steps.items()}
    (ta, tb, tc, td) = (times[n] for n in list(steps)[:4])
    (ma, mb, mc, md) = (memory[n] for n in list(steps)[:4])
    te = times.get('own passes (e)')
    me = memory.get('own passes (e)')

    print(f'\n{args.config} on {device} ({torch.get_num_threads()} threads), '
          f'batch {batches[0]["inputs"].shape[0]} x '
          f'{tuple(batches[0]["inputs"].shape[2:])}, median of {args.iters}'
          + (f', random weights and images ({args.num_boxes} boxes per '
             'image)' if args.random else ''))
    print(f'{"phase":<22}{"time (ms)":>12}{"peak mem (MiB)":>16}'
          f'{"forward (ms)":>14}')
    for name in steps:
        t, m = times[name], memory[name]
        f = (f'{1e3 * forwards[name]:>14.1f}' if name in forwards else
             f'{"all":>14}' if name == 'teacher forward (b)' else '')
        print(f'{name:<22}{1e3 * t:>12.1f}{m / 2**20:>16.1f}{f}')
    print(f'{"ratio c / (a + b)":<22}{tc / (ta + tb):>12.3f}'
          f'{(mc / (ma + mb) if ma + mb > 0 else float("nan")):>16.3f}')
    # (d) is part of (c): its share of the limit, and what is left, in
    # the forward (c's forward beyond a's, b and d's) and the backward
    fa, fc, fd = (forwards[n] for n in ('student step (a)',
                                        'distiller step (c)',
                                        'method terms (d)'))
    rest_forward = (fc - fa - tb - fd) / (ta + tb)
    rest_backward = ((tc - fc) - (ta - fa) - (td - fd)) / (ta + tb)
    print(f'{"share d / (a + b)":<22}{td / (ta + tb):>12.3f}')
    print(f'{"rest (c-a-b-d)/(a+b)":<22}'
          f'{rest_forward + rest_backward:>12.3f}')
    print(f'{"  of it in forward":<22}{rest_forward:>12.3f}')
    print(f'{"  of it in backward":<22}{rest_backward:>12.3f}')
    if te is not None:
        # the method's own limit; memory: (e) runs alone, not on top of (a)
        print(f'{"ratio c / (a + b + e)":<22}{tc / (ta + tb + te):>12.3f}')
    if args.json_out:
        with open(args.json_out, 'w') as f:
            json.dump(dict(
                config=args.config, device=str(device),
                threads=torch.get_num_threads(),
                batch=int(batches[0]['inputs'].shape[0]),
                image_size=list(batches[0]['inputs'].shape[2:]),
                num_boxes=args.num_boxes if args.random else None,
                num_classes=num_classes_of(model.student),
                cfg_options=args.cfg_options,
                time_s=dict(a=ta, b=tb, c=tc, d=td, e=te),
                forward_s=dict(a=fa, c=fc, d=fd),
                memory_bytes=dict(a=ma, b=mb, c=mc, d=md, e=me),
                time_ratio=tc / (ta + tb),
                terms_share=td / (ta + tb),
                memory_ratio=mc / (ma + mb) if ma + mb > 0 else None,
                own_limit_time_ratio=None if te is None else
                tc / (ta + tb + te)),
                f, indent=2)
    # after the figures are out: a profiler failure loses nothing
    if args.profile:
        print_profile(steps['distiller step (c)'], method_terms, batches[0],
                      device, args.profile)


if __name__ == '__main__':
    main()
