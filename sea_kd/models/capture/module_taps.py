"""Open capture: record the output of any submodule, named by its path."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from .method_tap import MethodTap


def checked_module_paths(paths: Sequence[str], owner: str,
                         option: str = 'paths') -> Tuple[str, ...]:
    """``paths`` as a tuple, checked to be a non-empty list of module paths.

    A method that takes the module paths it taps from its config calls this
    in ``__init__``: a single path given as a string would otherwise be
    read as one path per character.

    Args:
        paths: Module paths from a config, e.g. ``('backbone.layer3', )``.
        owner: The method's class name, for the messages.
        option: The config option holding them, for the messages.

    Returns:
        The paths, in order.

    Raises:
        TypeError: ``paths`` is a string (or not a list or tuple), or an
            entry is not a string.
        ValueError: ``paths`` is empty.
    """
    if isinstance(paths, str):
        raise TypeError(
            f'{owner}\'s `{option}` is a list of module paths, got the '
            f'string {paths!r}. Put it in a list or tuple: '
            f'{option}=({paths!r}, ).')
    if not isinstance(paths, (list, tuple)):
        raise TypeError(
            f'{owner}\'s `{option}` is a list of module paths, got the '
            f'{type(paths).__name__} {paths!r}. Write e.g. '
            f"{option}=('backbone.layer3', ).")
    if not paths:
        raise ValueError(f'{owner} needs at least one module path, e.g. '
                         f"{option}=('backbone.layer3',).")
    for path in paths:
        if not isinstance(path, str):
            raise TypeError(
                f'{owner}\'s `{option}` holds the {type(path).__name__} '
                f'{path!r}; each entry is a module path, a string such as '
                "'backbone.layer3'.")
    return tuple(paths)


def tapped_tensor(outputs: Dict[str, List[Any]], path: str, role: str,
                  reader: str) -> Tensor:
    """The last output of the tapped module at ``path``, which must be one
    tensor.

    Args:
        outputs: ``record.student_taps`` or ``record.teacher_taps``.
        path: The module path.
        role: ``'student'`` or ``'teacher'``, for the message.
        reader: The method that reads it, for the message.

    Returns:
        The output of the module's last call in the step.

    Raises:
        TypeError: The module returns something else, such as the tuple of
            per-level feature maps of a backbone or a neck; the message
            asks for a submodule that returns one tensor.
    """
    output = outputs[path][-1]
    if torch.is_tensor(output):
        return output
    what = f'a {type(output).__name__}'
    if isinstance(output, (tuple, list)):
        what += f' of {len(output)} items'
    raise TypeError(
        f'{reader} reads one tensor from the {role}\'s module `{path}`, but '
        f'it returns {what} (a backbone or a neck returns one feature map '
        f'per level). Tap a module that returns a single tensor instead: '
        f'one of the submodules of `{path}`, e.g. a stage of a ResNet '
        'backbone such as `backbone.layer3`.')


def module_at(model: nn.Module, path: str, role: str) -> nn.Module:
    """The submodule of ``model`` at ``path`` (``'backbone.layer2'``).

    Raises:
        ValueError: naming the path, the role and the nearest existing
            parent's children, when the path does not exist.
    """
    module = model
    walked = []
    for part in path.split('.'):
        children = dict(module.named_children())
        if part not in children:
            where = '.'.join(walked) or 'the detector'
            raise ValueError(
                f'The {role} ({type(model).__name__}) has no module '
                f'`{path}`: {where} has no child `{part}` (its children: '
                f'{", ".join(children) or "none"}). Fix the module path.')
        module = children[part]
        walked.append(part)
    return module


class ModuleTaps:
    """Record the outputs of the ``forward`` of submodules given by path,
    for the span of a block.

    ``outputs[path]`` lists one output per call (a shared head layer runs
    once per level), with its autograd graph.

    Args:
        model: The detector.
        paths: Module paths; checked when the taps are built.
        role: ``'student'`` or ``'teacher'``, for the messages.
    """

    def __init__(self, model: nn.Module, paths: Sequence[str],
                 role: str) -> None:
        self.role = role
        self.paths = tuple(dict.fromkeys(paths))
        self._modules = [module_at(model, p, role) for p in self.paths]
        self._stack = ExitStack()
        self._taps: List[MethodTap] = []

    def __enter__(self) -> 'ModuleTaps':
        self._taps = [
            self._stack.enter_context(MethodTap(m, 'forward'))
            for m in self._modules
        ]
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    @property
    def outputs(self) -> Dict[str, List[Any]]:
        """``{path: [output per call]}``; raises for a path that never ran."""
        out = {}
        for path, tap in zip(self.paths, self._taps):
            if not tap.calls:
                raise RuntimeError(
                    f'The {self.role}\'s module `{path}` did not run in this '
                    'step (the teacher runs only its backbone, neck, and the '
                    'dense head or R-CNN branch when a method reads them). '
                    'Tap a module on that path.')
            out[path] = [call.output for call in tap.calls]
        return out
