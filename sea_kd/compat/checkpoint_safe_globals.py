"""Allow mmengine checkpoints to load under ``torch.load(weights_only=True)``.

Since torch 2.6, :func:`torch.load` defaults to ``weights_only=True``. Its
restricted unpickler only rebuilds objects whose classes or functions are on an
allow-list, and checkpoints written by mmengine 0.10.x contain globals that are
not on torch's built-in list:

* ``message_hub.log_scalars`` holds
  :class:`mmengine.logging.history_buffer.HistoryBuffer` objects. Each one
  pickles numpy arrays (``_reconstruct``, ``ndarray``, ``dtype``) and a dict of
  its statistics methods, written as ``getattr(HistoryBuffer, 'min')`` and so
  on, hence the builtin :func:`getattr`.
* ``message_hub.runtime_info`` holds numpy scalars such as the ``eta``
  (``numpy.core.multiarray.scalar`` plus a ``dtype``).
* Depending on the numpy version that wrote the file, dtypes are referenced
  either through ``numpy.dtype`` or through their concrete classes
  (``numpy.dtypes.Float64DType`` and friends).

Without them :func:`mmengine.runner.load_checkpoint`, ``load_from``,
``Runner.resume`` and MMDetection's ``tools/test.py`` fail with
``Unsupported global``. :func:`register_checkpoint_safe_globals` adds exactly
these globals with :func:`torch.serialization.add_safe_globals`, which keeps
the weights-only safety check on for everything else (unlike the
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` environment variable).

Note on :func:`getattr`: the weights-only unpickler only *calls* allow-listed
globals, so objects reached through ``getattr`` can be stored but not called
unless they are themselves allow-listed.
"""

from __future__ import annotations

import builtins
import importlib
import re
import warnings
from types import ModuleType
from typing import Any, Callable, List, Optional, Tuple, Union

import torch

__all__ = ['get_checkpoint_safe_globals', 'register_checkpoint_safe_globals']

#: An entry accepted by :func:`torch.serialization.add_safe_globals`: either
#: the object itself (registered as ``{__module__}.{__qualname__}``), or, from
#: torch 2.6 on, a pair of the object and the full name used in the pickle.
SafeGlobal = Union[Callable[..., Any], Tuple[Callable[..., Any], str]]

# numpy 2 renamed ``numpy.core`` to ``numpy._core`` and writes the new name in
# pickles; files written with numpy 1.x use the old one. Both are listed so
# that a checkpoint loads whichever numpy wrote it.
_NUMPY_MULTIARRAY_MODULES = ('numpy._core.multiarray', 'numpy.core.multiarray')
_NUMPY_MULTIARRAY_FUNCTIONS = ('_reconstruct', 'scalar')


def _import_quietly(name: str) -> Optional[ModuleType]:
    """Import a module, returning ``None`` when it does not exist.

    ``numpy.core`` is a deprecated alias under numpy 2 and warns when it is
    imported; the warning is silenced because the alias is only probed here.

    Args:
        name: Dotted module name.

    Returns:
        The module, or ``None`` if it cannot be imported.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return importlib.import_module(name)
    except Exception:  # ImportError, or anything a broken shim raises
        return None


def _torch_version() -> Tuple[int, int]:
    """Return the ``(major, minor)`` version of the installed torch.

    Returns:
        The major and minor version numbers, ``(0, 0)`` if unparsable.
    """
    match = re.match(r'(\d+)\.(\d+)', str(torch.__version__))
    if match is None:
        return (0, 0)
    return (int(match.group(1)), int(match.group(2)))


def _supports_named_safe_globals() -> bool:
    """Whether ``add_safe_globals`` accepts ``(object, full_name)`` pairs.

    The pair form arrived in torch 2.6. Older versions store the tuple
    anyway and then fail on *every* weights-only load, so it must never be
    passed to them.

    Returns:
        True if pairs are supported.
    """
    return _torch_version() >= (2, 6)


def _numpy_globals(named: bool) -> List[SafeGlobal]:
    """Collect the numpy globals that mmengine checkpoints reference.

    Args:
        named: Whether ``(object, full_name)`` pairs may be returned, used to
            register the ``numpy.core``/``numpy._core`` name that the object's
            own ``__module__`` does not give.

    Returns:
        The entries to register; empty if numpy is not installed.
    """
    numpy = _import_quietly('numpy')
    if numpy is None:
        return []

    entries: List[SafeGlobal] = []
    for attr in ('ndarray', 'dtype'):
        obj = getattr(numpy, attr, None)
        if obj is not None:
            entries.append(obj)

    # multiarray functions, under both module spellings.
    modules = {
        name: _import_quietly(name)
        for name in _NUMPY_MULTIARRAY_MODULES
    }
    for func_name in _NUMPY_MULTIARRAY_FUNCTIONS:
        func = None
        for module in modules.values():
            if module is not None and hasattr(module, func_name):
                func = getattr(module, func_name)
                break
        if func is None:
            continue
        entries.append(func)
        if named:
            for module_name in _NUMPY_MULTIARRAY_MODULES:
                entries.append((func, f'{module_name}.{func_name}'))

    # Concrete dtype classes: ``numpy.dtypes.*DType`` (numpy >= 1.25), and
    # whatever ``type(dtype)`` is for every type code, which also covers
    # older numpy where the classes are named ``numpy.dtype[float64]``.
    dtype_base = getattr(numpy, 'dtype', None)
    dtype_classes: List[type] = []
    dtypes_module = _import_quietly('numpy.dtypes')
    if dtypes_module is not None and isinstance(dtype_base, type):
        for attr in sorted(dir(dtypes_module)):
            obj = getattr(dtypes_module, attr, None)
            if (isinstance(obj, type) and issubclass(obj, dtype_base)
                    and obj is not dtype_base):
                dtype_classes.append(obj)
    typecodes = getattr(numpy, 'typecodes', {}).get('All', '')
    for code in typecodes:
        try:
            dtype_cls = type(numpy.dtype(code))
        except Exception:
            continue
        if dtype_cls is not dtype_base:
            dtype_classes.append(dtype_cls)
    for dtype_cls in dtype_classes:
        if dtype_cls not in entries:
            entries.append(dtype_cls)
    return entries


def _mmengine_globals() -> List[SafeGlobal]:
    """Collect the mmengine globals that mmengine checkpoints reference.

    Returns:
        The entries to register; empty if mmengine is not installed.
    """
    module = _import_quietly('mmengine.logging.history_buffer')
    history_buffer = getattr(module, 'HistoryBuffer', None)
    return [] if history_buffer is None else [history_buffer]


def get_checkpoint_safe_globals() -> List[SafeGlobal]:
    """List the globals needed to load mmengine checkpoints weights-only.

    Returns:
        Entries suitable for :func:`torch.serialization.add_safe_globals`,
        without duplicates. Symbols missing from the installed numpy or
        mmengine are skipped.
    """
    named = _supports_named_safe_globals()
    entries: List[SafeGlobal] = [builtins.getattr]
    entries.extend(_mmengine_globals())
    entries.extend(_numpy_globals(named))

    unique: List[SafeGlobal] = []
    for entry in entries:
        if entry not in unique:
            unique.append(entry)
    return unique


def register_checkpoint_safe_globals() -> None:
    """Register the globals of mmengine checkpoints as weights-only safe.

    Safe to call any number of times: only entries not yet registered are
    added. Does nothing with torch < 2.4, which has no
    :func:`torch.serialization.add_safe_globals` (and loads with
    ``weights_only=False`` by default anyway).
    """
    serialization = getattr(torch, 'serialization', None)
    add_safe_globals = getattr(serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return

    get_safe_globals = getattr(serialization, 'get_safe_globals', None)
    try:
        registered = list(get_safe_globals()) if get_safe_globals else []
    except Exception:
        registered = []

    missing = [
        entry for entry in get_checkpoint_safe_globals()
        if entry not in registered
    ]
    if missing:
        add_safe_globals(missing)
