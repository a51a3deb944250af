"""The model inside mmengine's wrappers (DDP, FSDP, ...)."""
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """``model.module`` for a wrapped model (``runner.model`` under
    distributed training), else ``model`` itself."""
    return model.module if is_model_wrapper(model) else model
