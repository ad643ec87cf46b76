"""Softmax masks broadcast as PyTorch broadcasts them: every layout cuact's
mask rows take without a copy, the fallback for the rest, bool keep-masks."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import func

import cuact.functional as CF

SHAPES = [(5,), (1, 5), (4, 5), (3, 4, 5), (2, 1, 1, 5), (2, 3, 1, 5), (1, 3, 1, 5),
          (2, 1, 4, 5), (1, 1, 4, 1), ()]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_additive_mask_broadcasts_like_pytorch(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    mask = torch.randn(shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(CF.softmax(x, -1, mask=mask), F.softmax(x + mask, -1))
    torch.testing.assert_close(CF.log_softmax(x, -1, mask=mask, scale=0.5),
                               F.log_softmax(0.5 * x + mask, -1))


def test_bool_mask_keeps_true():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, generator=g)
    keep = torch.rand(2, 1, 1, 5, generator=g) > 0.3
    keep[..., 0] = True  # no fully hidden row here
    want = F.softmax(x.masked_fill(~keep, -math.inf), -1)
    torch.testing.assert_close(CF.softmax(x, -1, mask=keep), want)


def test_causal_matches_a_triangular_mask():
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    for offset in (0, 2, -1):
        hide = torch.ones(4, 6, dtype=torch.bool).triu(diagonal=1 + offset)
        want = F.softmax(x.masked_fill(hide, -math.inf), -1).nan_to_num(0.0)
        torch.testing.assert_close(CF.softmax(x, -1, causal=True, causal_offset=offset), want)


def test_strided_rows_are_read_in_place():
    x = torch.randn(6, 10, dtype=torch.float64)[:, :7]  # rows 10 apart
    assert not x.is_contiguous()
    torch.testing.assert_close(CF.softmax(x, -1), F.softmax(x, -1))
    torch.testing.assert_close(CF.softmin(x.t(), 0), F.softmin(x.t(), 0))


def test_mask_on_another_dimension_is_refused():
    with pytest.raises(ValueError, match="last dimension"):
        CF.softmax(torch.randn(3, 4), 0, mask=torch.zeros(4))


# ------------------------------------------------------------------ gradients
# The forward's mask (-inf entries) and causal settings decide which columns the
# gradient hides, never y: a visible column whose output saturated keeps its
# gradient, as PyTorch's.

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64], ids=str)
def test_saturated_log_softmax_column_keeps_its_gradient(dtype):
    # -big - big overflows to -inf (in double too for float64)
    big = 60000.0 if dtype == torch.float16 else torch.finfo(dtype).max
    x = torch.tensor([-big, big], dtype=dtype, requires_grad=True)
    y = CF.log_softmax(x, -1)  # the CPU reference: every dtype
    assert y[0] == -math.inf and y[1] == 0
    y.backward(torch.tensor([1.0, 0.0], dtype=dtype))
    assert torch.equal(x.grad, torch.tensor([1.0, -1.0], dtype=dtype))
    xt = x.detach().clone().requires_grad_()
    F.log_softmax(xt, -1).backward(torch.tensor([1.0, 0.0], dtype=dtype))
    assert torch.equal(x.grad, xt.grad)


def test_saturated_log_softmax_derivatives_match_pytorchs():
    # f32: y = [-inf, 0, -inf]; second derivatives and forward mode see the columns too
    x = torch.tensor([[-3e38, 3e38, -1e38], [0.5, -1.0, 2.0]])
    w = torch.tensor([[1.0, 0.25, -2.0], [0.5, 1.5, -1.0]])
    tx = torch.tensor([[0.3, -0.7, 1.1], [1.0, 2.0, -0.5]])

    def loss(fn):
        # y = -inf enters only through its gradient, never as a value
        return lambda t: (fn(t).clamp(min=-10.0) * w).sum()

    ours, theirs = (lambda t: CF.log_softmax(t, -1)), (lambda t: F.log_softmax(t, -1))
    torch.testing.assert_close(func.grad(loss(ours))(x), func.grad(loss(theirs))(x))
    # grad of <grad(x), tx>: the second derivative along tx
    hvp = lambda fn: func.grad(lambda t: (func.grad(loss(fn))(t) * tx).sum())(x)  # noqa: E731
    torch.testing.assert_close(hvp(ours), hvp(theirs))
    grad_of = lambda fn: (lambda t: func.vjp(fn, t)[1](w)[0])  # noqa: E731
    torch.testing.assert_close(func.jvp(grad_of(ours), (x,), (tx,)),
                               func.jvp(grad_of(theirs), (x,), (tx,)))


def _hidden_layout(sign):
    """Scores [2, 3, 4, 6] with a learned additive mask [3, 1, 6] holding -inf entries
    and a causal mask (offset 2), no row fully hidden; z = -inf from the input at a
    visible column (sign: softmin's -1)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 4, 6, generator=g, dtype=torch.float64)
    x[0, 1, 2, 1] = sign * -math.inf  # visible: it keeps its gradient
    mask = torch.randn(3, 1, 6, generator=g, dtype=torch.float64)
    mask[0, 0, 3], mask[2, 0, 0] = -math.inf, -math.inf
    causal = torch.ones(4, 6, dtype=torch.bool).triu(diagonal=3)  # j > i + 2
    hidden = (mask == -math.inf) | causal
    dy = torch.randn(2, 3, 4, 6, generator=g, dtype=torch.float64)
    return x, mask, hidden.expand(x.shape), dy


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_masked_causal_gradient_matches_pytorchs(name, dtype):
    sign = -1.0 if name == "softmin" else 1.0
    x, mask, hidden, dy = (t.to(dtype) if t.is_floating_point() else t
                           for t in _hidden_layout(sign))
    ours_fn, theirs_fn = getattr(CF, name), getattr(F, name)
    xa, ma = x.clone().requires_grad_(), mask.clone().requires_grad_()
    y = ours_fn(xa, -1, scale=0.5, mask=ma, causal=True, causal_offset=2)
    y.backward(dy)
    # PyTorch: the hidden columns' z is -inf; cuact reads their dy as 0 (SPEC), so
    # PyTorch's gradient is taken with dy = 0 there (for softmax and softmin it is
    # the same either way: y = 0 there).
    xb, mb = x.clone().requires_grad_(), mask.clone().requires_grad_()
    yt = theirs_fn((0.5 * xb + sign * mb).masked_fill(hidden, sign * -math.inf), -1)
    yt.backward(dy.masked_fill(hidden, 0.0))
    torch.testing.assert_close(y, yt.detach())
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(ma.grad, mb.grad)  # z = c x + m in both
    assert (xa.grad[hidden] == 0).all() and (ma.grad[mask == -math.inf] == 0).all()
    if name == "log_softmax":  # the -inf input column is visible: 0.5 (dy - exp(y) * sum)
        assert xa.grad[0, 1, 2, 1] == 0.5 * dy[0, 1, 2, 1] and dy[0, 1, 2, 1] != 0


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_masked_causal_second_derivatives_match_pytorchs(name):
    sign = -1.0 if name == "softmin" else 1.0
    x, mask, hidden, dy = _hidden_layout(sign)
    ours_fn, theirs_fn = getattr(CF, name), getattr(F, name)
    ours = lambda t, m: ours_fn(t, -1, scale=0.5, mask=m, causal=True,  # noqa: E731
                                causal_offset=2)
    theirs = lambda t, m: theirs_fn(  # noqa: E731
        (0.5 * t + sign * m).masked_fill(hidden, sign * -math.inf), -1)

    def loss(fn):  # the hidden outputs (-inf or 0, constant) enter through their gradient only
        return lambda t, m: (fn(t, m).where(~hidden, 0.0) * dy).sum()

    # the mask's -inf entries make finite differences (gradgradcheck) useless here
    for argnums in (0, 1):
        g_ours = func.grad(loss(ours), argnums)
        g_theirs = func.grad(loss(theirs), argnums)
        torch.testing.assert_close(g_ours(x, mask), g_theirs(x, mask))
        tx = torch.randn_like(x).where(x.isfinite(), 0.0)
        for arg in (0, 1):
            hvp = lambda g: func.grad(  # noqa: E731
                lambda *a: (g(*a) * (tx if argnums == 0 else tx[0, :, :1])).sum(), arg)
            torch.testing.assert_close(hvp(g_ours)(x, mask), hvp(g_theirs)(x, mask),
                                       equal_nan=True)
        torch.testing.assert_close(func.jvp(lambda t: g_ours(t, mask), (x,), (tx,)),
                                   func.jvp(lambda t: g_theirs(t, mask), (x,), (tx,)))
