"""Values registered per class and found by an object's class hierarchy."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple


class ClassHierarchyMap:
    """A value per registered class; an object gets the value of the
    nearest class in its method resolution order, so subclasses inherit
    their parent's value unless they have their own.

    Args:
        what: What the values are, for messages (``'view'``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._values: Dict[type, Any] = {}

    def add(self, cls: type, value: Any) -> None:
        """Register ``value`` for ``cls``; a class has at most one."""
        if cls in self._values:
            raise KeyError(f'{cls.__name__} already has the {self.what} '
                           f'{getattr(self._values[cls], "__name__", "")}'
                           .rstrip() + '.')
        self._values[cls] = value

    def register(self, *classes: type) -> Callable[[Any], Any]:
        """Decorator registering the decorated object for ``classes``."""

        def register(value: Any) -> Any:
            for cls in classes:
                self.add(cls, value)
            return value

        return register

    def lookup(self, obj: Any) -> Optional[Any]:
        """The value of the nearest registered class of ``obj``'s type, or
        ``None``."""
        for cls in type(obj).__mro__:
            if cls in self._values:
                return self._values[cls]
        return None

    def items(self) -> List[Tuple[type, Any]]:
        """``(class, value)`` of every registered class, by class name."""
        return sorted(self._values.items(), key=lambda kv: kv[0].__name__)

    def names(self) -> List[str]:
        """Names of the registered classes, sorted."""
        return sorted(cls.__name__ for cls in self._values)
