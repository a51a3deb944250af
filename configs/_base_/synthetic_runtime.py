# mmdet's runtime with iteration-based logging and checkpoints.
_base_ = 'mmdet::_base_/default_runtime.py'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=200,
        max_keep_ckpts=2))
log_processor = dict(type='LogProcessor', window_size=25, by_epoch=False)
# fixed seed: the demo's numbers are reproducible on the same machine
randomness = dict(seed=0, deterministic=False)
