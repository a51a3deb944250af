"""unwrap_model: the module inside a registered model wrapper."""
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

from sea_kd.utils.model_wrappers import unwrap_model


class _Wrapper(nn.Module):

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_a_wrapped_model_gives_its_module():
    MODEL_WRAPPERS.register_module(name='_TestWrapper', module=_Wrapper)
    try:
        inner = nn.Linear(2, 2)
        assert unwrap_model(_Wrapper(inner)) is inner
    finally:
        MODEL_WRAPPERS.module_dict.pop('_TestWrapper')


def test_a_plain_model_is_itself():
    model = nn.Sequential(nn.Linear(2, 2))
    model.module = nn.Linear(2, 2)  # a ``module`` attribute is not a wrapper
    assert unwrap_model(model) is model
