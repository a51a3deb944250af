"""The demo: teacher, baseline student and distilled student on generated
data, for RetinaNet and Faster R-CNN, with a table of their COCO APs.

    python tools/demo.py [--pairs retinanet faster-rcnn]
        [--methods fi adl sad-online sad-offline sea tbd tbd-hd tbd-tfd |
         all] [--work-dir DIR]

Each run is a subprocess of tools/train.py, tools/export_student.py and
tools/test.py, exactly the commands a user types. A teacher is trained only
when its checkpoint (the distiller config's ``teacher_ckpt``) is absent.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

from mmengine.config import Config

from sea_kd.datasets import generate_synthetic_coco, split_labeled_unlabeled

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join('configs', 'demo')
PAIRS = {
    'retinanet': dict(
        teacher='retinanet_r18_synthetic.py',
        student='retinanet_r18-w16_synthetic.py',
        distillers={
            'fi': 'fi_retinanet_r18_to_r18-w16_synthetic.py',
            'adl': 'adl_retinanet_r18_to_r18-w16_synthetic.py',
            'sad-online': 'sad-online_retinanet_r18_to_r18-w16_synthetic.py',
            'sad-offline':
            'sad-offline_retinanet_r18_to_r18-w16_synthetic.py',
            'sea': 'sea_retinanet_r18_to_r18-w16_synthetic.py',
            'tbd': 'tbd_retinanet_r18_to_r18-w16_synthetic.py',
            'tbd-hd': 'hd_retinanet_r18_to_r18-w16_synthetic.py',
            'tbd-tfd': 'tfd_retinanet_r18_to_r18-w16_synthetic.py',
            'pkd': 'pkd_retinanet_r18_to_r18-w16_synthetic.py',
            'cwd': 'cwd_retinanet_r18_to_r18-w16_synthetic.py',
            'at': 'at_retinanet_r18_to_r18-w16_synthetic.py',
            'fi-adl': 'fi-adl_retinanet_r18_to_r18-w16_synthetic.py',
            'mgd': 'mgd_retinanet_r18_to_r18-w16_synthetic.py',
            'fgd': 'fgd_retinanet_r18_to_r18-w16_synthetic.py',
        }),
    'faster-rcnn': dict(
        teacher='faster-rcnn_r18_synthetic.py',
        student='faster-rcnn_r18-w16_synthetic.py',
        distillers={
            'fi': 'fi_faster-rcnn_r18_to_r18-w16_synthetic.py',
            'sea': 'sea_faster-rcnn_r18_to_r18-w16_synthetic.py',
        }),
}

METHODS = ['fi', 'adl', 'sad-online', 'sad-offline', 'sea', 'tbd', 'tbd-hd',
           'tbd-tfd', 'pkd', 'cwd', 'mgd', 'fgd', 'at', 'fi-adl']


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def name_of(config):
    return osp.splitext(osp.basename(config))[0]


def train(config, work_dir, log_dir):
    """Train and return the final checkpoint (skips a finished run)."""
    last = osp.join(work_dir, 'last_checkpoint')
    cfg = Config.fromfile(osp.join(REPO, config))
    final = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    if not osp.exists(final):
        log = osp.join(log_dir, name_of(config) + '.train.log')
        print(f'training {config} (log: {log})', flush=True)
        with open(log, 'w') as f:
            subprocess.run([sys.executable, 'tools/train.py', config,
                            '--work-dir', work_dir], check=True, cwd=REPO,
                           stdout=f, stderr=subprocess.STDOUT)
    assert osp.exists(last), f'no checkpoint written by {config}'
    return final


def evaluate(config, checkpoint, work_dir, log_dir):
    out = osp.join(work_dir, 'metrics.json')
    log = osp.join(log_dir, osp.basename(work_dir) + '.test.log')
    with open(log, 'w') as f:
        subprocess.run([sys.executable, 'tools/test.py', config, checkpoint,
                        '--work-dir', work_dir, '--metrics-out', out],
                       check=True, cwd=REPO, stdout=f,
                       stderr=subprocess.STDOUT)
    with open(out) as f:
        return json.load(f)


def prepare_semi_supervised(method, teacher_cfg, teacher_ckpt):
    """Hold out half of the training labels; label them offline for SAD."""
    ann = osp.join(REPO, 'data', 'synthetic_coco', 'annotations')
    split_labeled_unlabeled(osp.join(ann, 'instances_train.json'), 0.5)
    if method == 'sad-offline':
        run([sys.executable, 'tools/pseudo_label.py', teacher_cfg,
             teacher_ckpt, osp.join(ann, 'instances_train_pseudo.json'),
             '--ann-file', osp.join(ann, 'instances_train_unlabeled.json'),
             '--img-dir', osp.join(REPO, 'data', 'synthetic_coco', 'train'),
             '--score-thr', '0.5'])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pairs', nargs='+', default=list(PAIRS),
                        choices=list(PAIRS))
    parser.add_argument('--methods', nargs='+', default=['fi'],
                        choices=METHODS + ['all'],
                        help='distillers to run where a pair has them '
                        '(default: fi; all: every one)')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    if 'all' in args.methods:
        args.methods = METHODS
    os.makedirs(osp.join(REPO, args.work_dir), exist_ok=True)
    log_dir = osp.join(REPO, args.work_dir, 'logs')
    os.makedirs(log_dir, exist_ok=True)

    print(generate_synthetic_coco(osp.join(REPO, 'data', 'synthetic_coco')))
    rows = []
    for pair in args.pairs:
        spec = PAIRS[pair]
        start = time.time()
        teacher_cfg = osp.join(DEMO, spec['teacher'])
        student_cfg = osp.join(DEMO, spec['student'])
        first = Config.fromfile(
            osp.join(REPO, DEMO, next(iter(spec['distillers'].values()))))
        teacher_ckpt = first.model.teacher_ckpt
        teacher_dir = osp.join(args.work_dir, name_of(teacher_cfg))
        if not osp.exists(osp.join(REPO, teacher_ckpt)):
            final = train(teacher_cfg, teacher_dir, log_dir)
            os.makedirs(osp.dirname(osp.join(REPO, teacher_ckpt)),
                        exist_ok=True)
            shutil.copyfile(osp.join(REPO, final),
                            osp.join(REPO, teacher_ckpt))
        else:
            print(f'teacher checkpoint {teacher_ckpt} exists: not retrained')
        results = dict(teacher=evaluate(teacher_cfg, teacher_ckpt,
                                        teacher_dir, log_dir))
        student_dir = osp.join(args.work_dir, name_of(student_cfg))
        results['student'] = evaluate(
            student_cfg, train(student_cfg, student_dir, log_dir),
            student_dir, log_dir)
        for method, config in spec['distillers'].items():
            if method not in args.methods:
                continue
            config = osp.join(DEMO, config)
            if method.startswith('sad'):
                prepare_semi_supervised(method, teacher_cfg, teacher_ckpt)
            work_dir = osp.join(args.work_dir, name_of(config))
            ckpt = train(config, work_dir, log_dir)
            exported = osp.join(work_dir, 'student_exported.pth')
            run([sys.executable, 'tools/export_student.py', config, ckpt,
                 exported])
            # the exported student is evaluated with the plain student config
            results[method] = evaluate(student_cfg, exported, work_dir,
                                       log_dir)
        for model, metrics in results.items():
            rows.append((pair, model, metrics.get('coco/bbox_mAP', 0.0),
                         metrics.get('coco/bbox_mAP_50', 0.0)))
        print(f'{pair}: done in {time.time() - start:.0f} s', flush=True)

    print('\nCOCO bbox AP on the generated validation split')
    print(f'{"pair":<12} {"model":<12} {"AP":>6} {"AP50":>6}')
    for pair, model, ap, ap50 in rows:
        print(f'{pair:<12} {model:<12} {100 * ap:6.1f} {100 * ap50:6.1f}')
    with open(osp.join(REPO, args.work_dir, 'results.json'), 'w') as f:
        json.dump([dict(pair=p, model=m, AP=a, AP50=b)
                   for p, m, a, b in rows], f, indent=2)


if __name__ == '__main__':
    main()
