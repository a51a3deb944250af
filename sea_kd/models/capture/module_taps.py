"""Open capture: record the output of any submodule, named by its path."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Dict, List, Sequence

from torch import nn

from .method_tap import MethodTap


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
