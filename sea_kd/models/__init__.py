from . import adapters, capture, distillers, losses  # noqa: F401
from .distillers import BaseDistiller, FeatureImitationDistiller

__all__ = ['BaseDistiller', 'FeatureImitationDistiller']
