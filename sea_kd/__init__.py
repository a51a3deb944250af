"""sea_kd: knowledge distillation of object detectors for MMDetection 3.x.

Importing the package checks the OpenMMLab stack, makes mmengine checkpoints
loadable under ``torch.load(weights_only=True)`` (and every checkpoint that
mmengine reads, local or downloaded, load weights-only) and registers the
distillers, losses, hooks and model wrappers in mmdet's and mmengine's
registries, so a config
only needs ``custom_imports = dict(imports=['sea_kd'])``.
"""
from .utils.env_check import check_environment

check_environment()

from .compat import (register_checkpoint_safe_globals,  # noqa: E402
                     register_safe_checkpoint_loaders)

register_checkpoint_safe_globals()
register_safe_checkpoint_loaders()

from . import compat, datasets, engine, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
