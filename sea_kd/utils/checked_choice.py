"""The one check of an option whose value is one of a fixed set."""
from __future__ import annotations

from typing import Any, Iterable


def checked_choice(name: str, value: Any, choices: Iterable,
                   meaning: str = '') -> Any:
    """``value`` if it is one of ``choices``, else a clear error.

    Args:
        name: The option as the user writes it (``'layers'``,
            ``'TeacherEvaluationHook: when'``).
        value: The value given.
        choices: The allowed values (a tuple; a dict gives its keys).
        meaning: What the choices mean, for the message (optional).

    Returns:
        ``value``.

    Raises:
        ValueError: ``value`` is not one of ``choices``; the message names
            the option, the choices and the value.
    """
    allowed = tuple(choices)
    try:
        known = value in allowed
    except (TypeError, RuntimeError):  # e.g. a tensor of several values
        known = False
    if not known:
        meaning = f' ({meaning})' if meaning else ''
        raise ValueError(f'{name} must be one of {allowed}{meaning}, got '
                         f'{value!r}.')
    return value
