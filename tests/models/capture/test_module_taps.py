"""Open capture: outputs of any submodule by path."""
import pytest
import torch
from torch import nn

from sea_kd.models.capture import ModuleTaps, module_at


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        self.shared = nn.Linear(4, 2)

    def forward(self, x):
        h = self.body(x)
        return self.shared(h) + self.shared(h * 2)


def test_module_at_finds_nested_paths_and_names_a_missing_one():
    net = Net()
    assert module_at(net, 'body.0', 'student') is net.body[0]
    with pytest.raises(ValueError) as err:
        module_at(net, 'body.7', 'teacher')
    message = str(err.value)
    assert '`body.7`' in message and 'teacher' in message
    assert 'body has no child `7`' in message and '0, 1' in message


def test_taps_record_every_call_with_gradient_and_leave_no_trace():
    net = Net()
    x = torch.randn(5, 3)
    with ModuleTaps(net, ['body.0', 'shared', 'body.0'], 'student') as taps:
        net(x)
    out = taps.outputs
    assert list(out) == ['body.0', 'shared']  # duplicates tapped once
    assert len(out['shared']) == 2  # one output per call
    expected = net.body[0](x)
    assert torch.allclose(out['body.0'][0], expected)
    assert torch.allclose(out['shared'][1],
                          net.shared(torch.relu(expected) * 2))
    out['body.0'][0].sum().backward()
    assert net.body[0].weight.grad is not None
    assert 'forward' not in vars(net.body[0])  # the tap is removed


def test_a_path_that_did_not_run_is_named():
    net = Net()
    with ModuleTaps(net, ['shared'], 'teacher') as taps:
        net.body(torch.randn(1, 3))
    with pytest.raises(RuntimeError, match="teacher's module `shared` did "
                       'not run'):
        taps.outputs
