from .conv_adapter import ConvAdapter, build_level_adapters

__all__ = ['ConvAdapter', 'build_level_adapters']
