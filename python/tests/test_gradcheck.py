"""torch.autograd.gradcheck in float64 (the CPU reference) for every operation
with a gradient."""
import pytest
import torch

import cuact.functional as CF
from cases import ELEMENTWISE

ops = torch.ops.cuact


def _x(*shape, avoid=()):
    """float64 inputs away from the kinks (finite differences cross no kink)."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(*shape, generator=g, dtype=torch.float64) * 8 - 4
    for k in (0.0, *avoid):
        near = (x - k).abs() < 0.05
        x = torch.where(near, x + 0.1, x)
    return x.requires_grad_()


@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c.label for c in ELEMENTWISE])
def test_elementwise(case):
    assert torch.autograd.gradcheck(case.ours, (_x(16, avoid=case.points),))


@pytest.mark.parametrize("activation", ["quick_gelu", "identity", "mish", "sigmoid"])
def test_other_activations(activation):
    assert torch.autograd.gradcheck(lambda x: CF.activation(x, activation), (_x(16),))


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_bias_activation_with_dropout(p):
    pair = torch.tensor([7, 11])
    kind, params = CF.activation_params("gelu")
    f = lambda x, b: ops.bias_activation(x, b, kind, params, p, pair)[0]  # noqa: E731
    assert torch.autograd.gradcheck(f, (_x(5, 6), _x(6)))


@pytest.mark.parametrize("fn", [CF.glu, CF.swiglu, CF.geglu, CF.reglu])
def test_glu_family(fn):
    assert torch.autograd.gradcheck(lambda x: fn(x, 0), (_x(6, 3),))


def test_prelu():
    assert torch.autograd.gradcheck(CF.prelu, (_x(2, 3, 4), _x(3)))
    assert torch.autograd.gradcheck(CF.prelu, (_x(2, 3, 4), _x(1)))


def test_rrelu_training():
    pair = torch.tensor([3, 4])
    f = lambda x: ops.rrelu(x, 0.125, 1 / 3, True, pair)[0]  # noqa: E731
    assert torch.autograd.gradcheck(f, (_x(20),))


@pytest.mark.parametrize("fn", [CF.softmax, CF.log_softmax, CF.softmin])
def test_softmax_family(fn):
    assert torch.autograd.gradcheck(lambda x: fn(x, dim=-1, scale=0.7), (_x(3, 5),))
    assert torch.autograd.gradcheck(lambda x: fn(x, dim=0), (_x(3, 5),))
    if fn is not CF.log_softmax:  # its hidden outputs are -inf: no finite differences there
        assert torch.autograd.gradcheck(lambda x: fn(x, dim=-1, causal=True), (_x(2, 3, 3),))
