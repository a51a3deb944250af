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

Security: torch's weights-only unpickler *calls* every allow-listed callable
that a pickle names, and calls ``__setstate__`` looked up on the instance.
Allow-listing the real :func:`getattr` would therefore let a checkpoint reach
any attribute of an allow-listed object (``getattr.__self__`` is the
``builtins`` module, whose ``exec`` a ``HistoryBuffer`` instance can be given
as its own ``__setstate__``) and run arbitrary code. The name
``builtins.getattr`` is therefore registered for
:func:`checkpoint_getattr`, a stand-in that resolves only the attributes real
mmengine checkpoints use (``HistoryBuffer.min``/``max``/``current``/``mean``)
and refuses everything else with :class:`pickle.UnpicklingError`. The real
:func:`getattr` is never registered, and is removed when another library
registered it.
"""

from __future__ import annotations

import builtins
import importlib
import pickle
import re
import warnings
from types import ModuleType
from typing import Any, Callable, List, Optional, Tuple, Union

import torch

__all__ = [
    'checkpoint_getattr', 'get_checkpoint_safe_globals',
    'register_checkpoint_safe_globals'
]

#: An entry accepted by :func:`torch.serialization.add_safe_globals`: either
#: the object itself (registered as ``{__module__}.{__qualname__}``), or, from
#: torch 2.6 on, a pair of the object and the full name used in the pickle.
SafeGlobal = Union[Callable[..., Any], Tuple[Callable[..., Any], str]]

# numpy 2 renamed ``numpy.core`` to ``numpy._core`` and writes the new name in
# pickles; files written with numpy 1.x use the old one. Both are listed so
# that a checkpoint loads whichever numpy wrote it.
_NUMPY_MULTIARRAY_MODULES = ('numpy._core.multiarray', 'numpy.core.multiarray')
_NUMPY_MULTIARRAY_FUNCTIONS = ('_reconstruct', 'scalar')

#: The only attributes a checkpoint may look up through ``getattr``: the
#: statistics methods that ``HistoryBuffer.__getstate__`` pickles by
#: reference (mmengine's ``_set_default_statistics``).
HISTORY_BUFFER_ATTRIBUTES = ('min', 'max', 'current', 'mean')


def checkpoint_getattr(obj: Any, name: Any) -> Any:
    """``getattr`` as a checkpoint may call it: HistoryBuffer methods only.

    Registered for torch's weights-only unpickler under the pickle name
    ``builtins.getattr`` in place of the built-in (see the module docstring).

    Args:
        obj: The object the pickle looks the attribute up on.
        name: The attribute name.

    Returns:
        ``getattr(HistoryBuffer, name)`` for a name in
        :data:`HISTORY_BUFFER_ATTRIBUTES`.

    Raises:
        pickle.UnpicklingError: For any other object or name.
    """
    history_buffer = _history_buffer_class()
    if (history_buffer is not None and obj is history_buffer
            and isinstance(name, str) and name in HISTORY_BUFFER_ATTRIBUTES):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'The checkpoint asks for getattr({_describe(obj)}, {name!r}), which '
        'no mmengine or sea_kd checkpoint contains and which can be used to '
        'run code; loading it was refused. Only getattr(HistoryBuffer, '
        f'{"|".join(HISTORY_BUFFER_ATTRIBUTES)}) is allowed. Do not load a '
        'checkpoint from a source you do not trust.')


def _describe(obj: Any) -> str:
    """A short, safe description of ``obj`` for an error message."""
    name = getattr(obj, '__qualname__', None) or getattr(
        obj, '__name__', None)
    if isinstance(name, str):
        return name
    return f'<{type(obj).__name__} object>'


def _history_buffer_class() -> Optional[type]:
    """mmengine's ``HistoryBuffer``, or ``None`` without mmengine."""
    module = _import_quietly('mmengine.logging.history_buffer')
    return getattr(module, 'HistoryBuffer', None)


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
    history_buffer = _history_buffer_class()
    return [] if history_buffer is None else [history_buffer]


def get_checkpoint_safe_globals() -> List[SafeGlobal]:
    """List the globals needed to load mmengine checkpoints weights-only.

    Returns:
        Entries suitable for :func:`torch.serialization.add_safe_globals`,
        without duplicates. Symbols missing from the installed numpy or
        mmengine are skipped.
    """
    named = _supports_named_safe_globals()
    entries: List[SafeGlobal] = []
    if named:
        entries.append((checkpoint_getattr, 'builtins.getattr'))
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
    added. An entry that makes the real :func:`getattr` loadable (registered
    by another library or an older sea_kd) is removed with a warning, since
    it lets any checkpoint run code. Does nothing with torch < 2.4, which has
    no :func:`torch.serialization.add_safe_globals` (and loads with
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

    unsafe = [entry for entry in registered if _is_unsafe_getattr(entry)]
    clear_safe_globals = getattr(serialization, 'clear_safe_globals', None)
    if unsafe and clear_safe_globals is not None:
        warnings.warn(
            'The built-in getattr was registered as a weights-only safe '
            'global, which lets any checkpoint run code; sea_kd removed it '
            'and registered its restricted stand-in instead.')
        registered = [entry for entry in registered if entry not in unsafe]
        clear_safe_globals()
        if registered:
            add_safe_globals(registered)

    missing = [
        entry for entry in get_checkpoint_safe_globals()
        if entry not in registered
    ]
    if missing:
        add_safe_globals(missing)


def _is_unsafe_getattr(entry: Any) -> bool:
    """Whether a registered safe global makes the real ``getattr`` loadable.

    Args:
        entry: An entry of ``torch.serialization.get_safe_globals()``.

    Returns:
        True for the built-in itself, or any pair naming it or registered
        under ``builtins.getattr`` that is not :func:`checkpoint_getattr`.
    """
    if entry is builtins.getattr:
        return True
    if isinstance(entry, tuple) and len(entry) == 2:
        obj, name = entry
        return obj is not checkpoint_getattr and (
            obj is builtins.getattr or name == 'builtins.getattr')
    return False
