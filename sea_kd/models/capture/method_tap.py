"""Record the calls of one method of one object, for the span of a block."""
from __future__ import annotations

import functools
from typing import Any, List, NamedTuple


class RecordedCall(NamedTuple):
    """Arguments and return value of one recorded call."""
    args: tuple
    kwargs: dict
    output: Any


class MethodTap:
    """Context manager that records every call of ``owner.name``.

    Inside the block the instance attribute ``name`` shadows the class method
    with a wrapper that calls the original and keeps its arguments and output
    (tensors keep their autograd graph). Leaving the block removes the wrapper,
    so the object is exactly as before. This lets the distiller run a
    detector's own, unmodified ``loss()`` once and still see intermediate
    results, such as the targets a head's assigner produced.

    Args:
        owner: The object (usually an ``nn.Module``) whose method is tapped.
        name: The method's name, e.g. ``'get_targets'`` or ``'forward'``.

    Example:
        >>> with MethodTap(head, 'get_targets') as tap:
        ...     losses = detector.loss(inputs, data_samples)
        >>> targets = tap.first.output
    """

    def __init__(self, owner: Any, name: str) -> None:
        if not callable(getattr(owner, name, None)):
            raise AttributeError(
                f'{type(owner).__name__} has no method `{name}` to record.')
        self.owner = owner
        self.name = name
        self.calls: List[RecordedCall] = []

    def __enter__(self) -> 'MethodTap':
        if self.name in vars(self.owner):
            raise RuntimeError(f'`{type(self.owner).__name__}.{self.name}` '
                               'is already tapped or overridden per instance.')
        original = getattr(self.owner, self.name)

        @functools.wraps(original)
        def recorded(*args, **kwargs):
            output = original(*args, **kwargs)
            self.calls.append(RecordedCall(args, kwargs, output))
            return output

        # write to __dict__ directly: nn.Module.__setattr__ is not needed for
        # a plain function and would not accept every value type.
        vars(self.owner)[self.name] = recorded
        return self

    def __exit__(self, *exc_info) -> None:
        vars(self.owner).pop(self.name, None)

    @property
    def first(self) -> RecordedCall:
        """The first recorded call; raises if the method was never called."""
        if not self.calls:
            raise RuntimeError(
                f'`{type(self.owner).__name__}.{self.name}` was not called '
                'during the student loss; this detector type is not supported '
                'by the capture (see docs/architecture.md).')
        return self.calls[0]
