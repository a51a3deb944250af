"""Turn a teacher/student specification into an mmdet model config."""
from __future__ import annotations

import copy
import os.path as osp
from typing import Union

from mmengine.config import Config, ConfigDict
from mmengine.utils import import_modules_from_strings

ModelSpec = Union[str, dict, ConfigDict]


def _load_config_file(path: str, role: str) -> Config:
    """Load a local config path or an ``mmdet::`` package path."""
    if '::' in path:
        from mmengine.hub import get_config
        try:
            return get_config(path)
        except Exception as err:
            raise FileNotFoundError(
                f'The {role} config `{path}` could not be loaded from its '
                f'package: {err}. Package paths look like '
                '`mmdet::retinanet/retinanet_r50_fpn_1x_coco.py`.') from err
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'The {role} config file `{path}` does not exist (looked for it '
            f'relative to the working directory {osp.abspath(".")}). Give a '
            'path relative to where training is launched, an absolute path, '
            'or an `mmdet::` package path.')
    return Config.fromfile(path)


def load_model_cfg(spec: ModelSpec, role: str) -> ConfigDict:
    """Return the model config of a teacher or student.

    Args:
        spec: A model config dict (with ``type``), a full config dict or
            :class:`Config` holding a ``model`` entry, or a path to a config
            file: local, or ``mmdet::`` for mmdet's packaged configs.
        role: ``'teacher'`` or ``'student'``, used in error messages.

    Returns:
        ConfigDict: A deep copy of the model config. ``custom_imports`` of a
        loaded config file are imported so that its types are registered.
    """
    if isinstance(spec, str):
        cfg = _load_config_file(spec, role)
        if cfg.get('custom_imports'):
            import_modules_from_strings(**cfg.custom_imports)
        if 'model' not in cfg:
            raise ValueError(f'The {role} config file `{spec}` has no '
                             '`model` entry.')
        return copy.deepcopy(cfg.model)
    if isinstance(spec, Config):
        spec = spec._cfg_dict
    if isinstance(spec, dict):
        if 'type' not in spec and 'model' in spec:
            spec = spec['model']
        if 'type' not in spec:
            raise ValueError(
                f'The {role} must be a model config with a `type`, a config '
                f'with a `model` entry, or a config file path; got keys '
                f'{sorted(spec)}.')
        return ConfigDict(copy.deepcopy(dict(spec)))
    raise TypeError(f'The {role} must be a config dict or a config file '
                    f'path, got {type(spec).__name__}.')
