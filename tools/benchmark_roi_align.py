"""Time mmcv's RoIAlign against SparseRoIAlign, forward and backward.

    python tools/benchmark_roi_align.py [--regions 512] [--channels 64]
        [--size 128] [--batch 4] [--sampling-ratio 0] [--iters 10]
        [--device cpu|cuda]

For each FPN stride (4 to 64) it pools the same random regions from a
(batch, channels, size/stride, size/stride) map with both implementations,
checks that they agree, and prints the median forward and backward times.
"""
import argparse
import statistics
import time

import torch
from mmcv.ops import RoIAlign

from sea_kd.models.utils.sparse_roi_align import SparseRoIAlign


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--regions', type=int, default=512)
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--sampling-ratio', type=int, default=0)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args()


def time_layer(layer, feat, rois, grad, iters, sync):
    forward, backward = [], []
    for _ in range(iters + 2):
        sync()
        t0 = time.perf_counter()
        out = layer(feat, rois)
        sync()
        t1 = time.perf_counter()
        out.backward(grad)
        sync()
        forward.append(t1 - t0)
        backward.append(time.perf_counter() - t1)
        feat.grad = None
    return (1e3 * statistics.median(forward[2:]),
            1e3 * statistics.median(backward[2:]), out.detach())


def main():
    args = parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(args.regions, 2, generator=gen) * args.size * 0.8
    wh = torch.rand(args.regions, 2, generator=gen) * args.size * 0.5 + 2
    rois = torch.cat([
        torch.randint(0, args.batch, (args.regions, 1), generator=gen).float(),
        xy, (xy + wh).clamp(max=args.size)], 1).to(device)
    print(f'{args.regions} regions, batch {args.batch} x {args.channels} '
          f'channels, {args.size}px input, sampling_ratio '
          f'{args.sampling_ratio}, on {device} '
          f'({torch.get_num_threads()} threads); medians in ms')
    print(f'{"stride":>6}{"mmcv fwd":>10}{"mmcv bwd":>10}{"sparse fwd":>12}'
          f'{"sparse bwd":>12}{"speed-up":>10}{"max |diff|":>12}')
    totals = [0.0, 0.0]
    for stride in (4, 8, 16, 32, 64):
        side = max(args.size // stride, 1)
        feat = torch.randn(args.batch, args.channels, side, side,
                           generator=gen).to(device).requires_grad_()
        grad = torch.randn(args.regions, args.channels, 7, 7,
                           generator=gen).to(device)
        layers = (RoIAlign(7, 1.0 / stride, args.sampling_ratio),
                  SparseRoIAlign(7, 1.0 / stride, args.sampling_ratio))
        (mf, mb, ref), (sf, sb, out) = (
            time_layer(layer, feat, rois, grad, args.iters, sync)
            for layer in layers)
        totals[0] += mf + mb
        totals[1] += sf + sb
        print(f'{stride:>6}{mf:>10.1f}{mb:>10.1f}{sf:>12.1f}{sb:>12.1f}'
              f'{(mf + mb) / (sf + sb):>10.2f}'
              f'{float((out - ref).abs().max()):>12.1e}')
    print(f'{"all":>6}{totals[0]:>20.1f}{totals[1]:>24.1f}'
          f'{totals[0] / totals[1]:>10.2f}')


if __name__ == '__main__':
    main()
