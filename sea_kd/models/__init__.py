from . import adapters, capture, distillers, losses  # noqa: F401
from .distillers import (ADLDistiller, BaseDistiller,
                         FeatureImitationDistiller)

__all__ = ['ADLDistiller', 'BaseDistiller', 'FeatureImitationDistiller']
