import pytest
import torch
from torch import nn

from sea_kd.models.capture import MethodTap


class Toy(nn.Module):

    def forward(self, x):
        return self.helper(x) + 1

    def helper(self, x):
        return x * 2


def test_records_calls_and_restores_the_object():
    toy = Toy()
    with MethodTap(toy, 'helper') as tap:
        out = toy(torch.tensor([1.0, 2.0]))
        toy(torch.tensor([3.0]))
    assert torch.equal(out, torch.tensor([3.0, 5.0]))
    assert len(tap.calls) == 2
    assert torch.equal(tap.first.args[0], torch.tensor([1.0, 2.0]))
    assert torch.equal(tap.first.output, torch.tensor([2.0, 4.0]))
    assert 'helper' not in vars(toy)
    assert toy.helper.__func__ is Toy.helper


def test_forward_tap_keeps_graph():
    toy = Toy()
    x = torch.ones(2, requires_grad=True)
    with MethodTap(toy, 'forward') as tap:
        toy(x)
    tap.first.output.sum().backward()
    assert torch.equal(x.grad, torch.full((2, ), 2.0))


def test_restores_after_exception():
    toy = Toy()
    with pytest.raises(ZeroDivisionError):
        with MethodTap(toy, 'helper'):
            1 / 0
    assert 'helper' not in vars(toy)


def test_errors():
    toy = Toy()
    with pytest.raises(AttributeError, match='no method `nothing`'):
        MethodTap(toy, 'nothing')
    with MethodTap(toy, 'helper'):
        with pytest.raises(RuntimeError, match='already tapped'):
            with MethodTap(toy, 'helper'):
                pass
    with MethodTap(toy, 'helper') as unused:
        pass
    with pytest.raises(RuntimeError, match='was not called'):
        unused.first
