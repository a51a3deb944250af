"""Import-time check that the OpenMMLab stack sea_kd runs on is usable.

sea_kd depends on *import names* and versions, not on one distribution: the
upstream packages (``mmengine``, ``mmcv``, ``mmdet``) and the maintained OneDL
fork (``onedl-mmengine``, ``onedl-mmcv``, ``onedl-mmdetection``) both satisfy
it.
"""
from __future__ import annotations

import importlib
import re
from typing import Tuple

# (import name, minimum version inclusive, maximum version exclusive)
SUPPORTED_VERSIONS = (
    ('mmengine', '0.10.0', '1.0.0'),
    ('mmcv', '2.0.0', '3.0.0'),
    ('mmdet', '3.0.0', '4.0.0'),
)

SETUP_HINT = ('Run `bash tools/setup_env.sh` from the sea_kd repository (it '
              'builds mmcv with its compiled ops against the installed '
              'torch), '
              'or see docs/installation.md.')


def _version_tuple(version: str) -> Tuple[int, ...]:
    """Turn ``'2.1.0rc4'`` into ``(2, 1, 0)`` (pre-release tags dropped)."""
    numbers = re.findall(r'\d+', version.split('+')[0])[:3]
    return tuple(int(n) for n in numbers) + (0, ) * (3 - len(numbers))


def check_environment() -> None:
    """Raise ``ImportError`` naming the problem and its fix if the stack is
    off.

    Checks that mmengine, mmcv and mmdet import, that their versions lie in
    :data:`SUPPORTED_VERSIONS`, and that mmcv's compiled ops (``mmcv._ext``)
    load: mmcv built without them imports fine but fails later inside RoIAlign
    or NMS.
    """
    for name, low, high in SUPPORTED_VERSIONS:
        try:
            module = importlib.import_module(name)
        except ImportError as err:  # pragma: no cover - depends on the env
            raise ImportError(
                f'sea_kd needs the `{name}` package ({low} <= version < '
                f'{high}) but importing it failed: {err}. {SETUP_HINT}'
            ) from err
        version = getattr(module, '__version__', '0')
        if not (_version_tuple(low) <= _version_tuple(version) <
                _version_tuple(high)):
            raise ImportError(
                f'sea_kd supports {name} {low} <= version < {high}, found '
                f'{version}. {SETUP_HINT}')
    try:
        importlib.import_module('mmcv._ext')
    except ImportError as err:
        raise ImportError(
            'mmcv is installed without its compiled ops (`import mmcv._ext` '
            f'failed: {err}). This happens when mmcv is installed from a '
            'wheel built in an isolated environment or for another torch. '
            'Rebuild it against the installed torch with `pip install '
            '--no-build-isolation --no-cache-dir mmcv==2.1.0` (or '
            f'onedl-mmcv for the OneDL fork). {SETUP_HINT}') from err
