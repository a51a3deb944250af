"""The one-method distillers of sea_kd 0.1, kept as thin aliases.

``dict(type='SEADistiller', student=..., teacher=..., teacher_ckpt=...,
loss_sea=...)`` is ``dict(type='Distiller', ..., methods=[dict(type='SEA',
loss_sea=...)])``: the distiller's own arguments stay on the distiller and
every other argument goes to the method. Attributes the distiller does not
have are read from its method (``model.loss_sea``), and checkpoints of
sea_kd 0.1 load (:meth:`Distiller._unprefixed_keys`).
"""
from __future__ import annotations

import logging
from typing import Optional

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.logging import print_log

from .distiller import Distiller, ModelSpec


def deprecation_message(alias: str, method_type: str,
                        method_options: dict) -> str:
    """What the log says when a one-method alias is built: the config in
    the one dialect that replaces it."""
    options = ''.join(f', {key}=...' for key in method_options)
    return (f'{alias} is deprecated and will be removed: write the model '
            f"as dict(type='Distiller', student=..., teacher=..., "
            f"teacher_ckpt=..., methods=[dict(type='{method_type}'"
            f'{options})]); the distiller\'s own options (balance, '
            'teacher_dtype, ...) stay outside `methods`. It builds the same '
            'model and loads the same checkpoints.')


class SingleMethodDistiller(Distiller):
    """A :class:`Distiller` with one method of type :attr:`method_type`."""

    method_type: str = ''

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 teacher_ckpt: Optional[str],
                 student_ckpt: Optional[str] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 nonfinite_loss: str = 'raise',
                 max_consecutive_skips: int = 10,
                 teacher_dtype: str = 'float32',
                 balance: OptConfigType = None,
                 inherit_teacher: bool = False,
                 **method_options) -> None:
        super().__init__(
            student, teacher, teacher_ckpt,
            methods=[dict(type=self.method_type, **method_options)],
            student_ckpt=student_ckpt, data_preprocessor=data_preprocessor,
            init_cfg=init_cfg, nonfinite_loss=nonfinite_loss,
            max_consecutive_skips=max_consecutive_skips,
            teacher_dtype=teacher_dtype, balance=balance,
            inherit_teacher=inherit_teacher)
        print_log(deprecation_message(type(self).__name__, self.method_type,
                                      method_options),
                  logger='current', level=logging.WARNING)

    @property
    def method(self):
        """The distiller's one method."""
        return next(iter(self.methods.values()))

    @property
    def method_name(self) -> str:
        """Its loss-name prefix (``loss_<method_name>_<term>``)."""
        return self.method.name

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            methods = self.__dict__.get('_modules', {}).get('methods')
            if methods is None or len(methods) != 1:
                raise
            return getattr(next(iter(methods.values())), name)


@MODELS.register_module()
class FeatureImitationDistiller(SingleMethodDistiller):
    """A distiller with one :class:`FeatureImitation` method."""
    method_type = 'FeatureImitation'


@MODELS.register_module()
class ADLDistiller(SingleMethodDistiller):
    """A distiller with one :class:`ADL` method."""
    method_type = 'ADL'


@MODELS.register_module()
class SEADistiller(SingleMethodDistiller):
    """A distiller with one :class:`SEA` method."""
    method_type = 'SEA'


@MODELS.register_module()
class TBDDistiller(SingleMethodDistiller):
    """A distiller with one :class:`TBD` method."""
    method_type = 'TBD'


@MODELS.register_module()
class GDetKDDistiller(SingleMethodDistiller):
    """A distiller with one :class:`GDetKD` method (the pipeline the pair
    needs)."""
    method_type = 'GDetKD'


#: The one-method alias of each method that has one, by method type.
ALIAS_OF_METHOD = {
    cls.method_type: cls.__name__
    for cls in (FeatureImitationDistiller, ADLDistiller, SEADistiller,
                TBDDistiller, GDetKDDistiller)
}
