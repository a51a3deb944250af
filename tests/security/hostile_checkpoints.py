"""Checkpoints that try to run code when loaded, for the security tests.

Each one, if it ever runs, creates the file ``marker``; a test loads it and
checks that loading fails and that ``marker`` does not exist.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from mmengine.logging import HistoryBuffer


class _Call:
    """Pickles as ``fn(*args)`` (a REDUCE of ``fn`` on ``args``)."""

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _BufferWithState:
    """Pickles as a new ``HistoryBuffer`` followed by a BUILD of ``state``."""

    def __init__(self, state) -> None:
        self.state = state

    def __reduce__(self):
        return HistoryBuffer, (), self.state


class _Rebuild:
    """Pickles as ``obj`` (reached again through ``getattr``) followed by a
    second BUILD with ``state``."""

    def __init__(self, obj, state) -> None:
        self.obj, self.state = obj, state

    def __reduce__(self):
        bound = _Call(getattr, self.obj, 'mean')
        return getattr, (bound, '__self__'), self.state


def getattr_gadget(marker: Path) -> list:
    """The ``getattr`` + ``HistoryBuffer.__setstate__`` gadget.

    ``getattr(getattr, '__self__')`` is the ``builtins`` module and
    ``getattr(builtins, 'exec')`` its ``exec``. A ``HistoryBuffer`` built with
    ``{'__setstate__': exec}`` has ``exec`` as an instance attribute, which
    torch's unpickler calls for the next BUILD of the same object (reached
    back through ``getattr(getattr(buffer, 'mean'), '__self__')``) with the
    code as its state.
    """
    exec_fn = _Call(getattr, _Call(getattr, getattr, '__self__'), 'exec')
    buffer = _BufferWithState({'__setstate__': exec_fn})
    code = f'open({str(marker)!r}, "w").write("ran")'
    return [buffer, _Rebuild(buffer, code)]


class _System:
    """The classic ``os.system`` pickle."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


def save_getattr_gadget_checkpoint(path: Path, marker: Path,
                                   state_dict: dict) -> None:
    """An otherwise valid checkpoint with one extra key holding the gadget."""
    torch.save(
        dict(state_dict=state_dict, meta=dict(iter=1),
             extra=getattr_gadget(marker)), path)


def save_system_checkpoint(path: Path, marker: Path,
                           state_dict: dict) -> None:
    """A checkpoint whose extra key runs ``touch marker`` when unpickled."""
    torch.save(
        dict(state_dict=state_dict, extra=_System(f'touch {marker}')), path)
