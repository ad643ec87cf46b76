"""The suite's CUDA half: cuact's kernels (through the operators) against the
CPU reference, streams, CUDA graphs with fresh dropout masks, and the clear
error for float64. Skips without a GPU (fails with CUACT_REQUIRE_GPU=1)."""
import math

import pytest
import torch

import cuact.functional as CF
from cases import ELEMENTWISE, dense_grid
from parity import agree

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def within_contract(dev, ref, dtype, backward):
    """README's accuracy contract for the kernels (dy = 1): 1 ulp for fp16/bf16;
    for fp32 the largest stated bound (11 ulp), errors below FLT_MIN, and
    backward's absolute allowance 4 * 2^-24 near a zero of f'."""
    if dtype != torch.float32:
        return agree(dev, ref, dtype, ulps=1)
    err = (dev - ref).abs()
    small = err < torch.finfo(torch.float32).tiny
    if backward:
        small |= err <= 4 * 2.0 ** -24
    return agree(dev, ref, dtype, ulps=11) | (small & dev.isfinite() & ref.isfinite())


def _both(fn, x, dy):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    (g,) = torch.autograd.grad(y, x, dy.reshape(y.shape))
    return y.detach().double().cpu().reshape(-1), g.detach().double().cpu().reshape(-1)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c.label for c in ELEMENTWISE])
def test_elementwise_kernels_match_the_reference(cuda, case, dtype):
    x = dense_grid(case, dtype)
    dy = torch.ones(case.ours(x).numel(), dtype=dtype)
    ref = _both(case.ours, x, dy)
    dev = _both(case.ours, x.to(cuda), dy.to(cuda))
    for k, (r, d) in enumerate(zip(ref, dev)):
        bad = ~within_contract(d, r, dtype, backward=k == 1)
        assert not bad.any(), (x[bad.nonzero()[:5].flatten()], r[bad][:5], d[bad][:5])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", [CF.softmax, CF.log_softmax, CF.softmin])
def test_softmax_kernels_match_the_reference(cuda, fn, dtype):
    g = torch.Generator().manual_seed(0)
    for shape, kw in [((64, 1000), dict(dim=-1)), ((3, 4, 50, 50), dict(dim=-1, causal=True)),
                      ((8, 33, 7), dict(dim=1)), ((2, 5000), dict(dim=-1, scale=0.3))]:
        x = (torch.randn(shape, generator=g) * 3).to(dtype)
        dy = torch.randn(shape, generator=g).to(dtype)
        for r, d in zip(_both(lambda t: fn(t, **kw), x, dy),
                        _both(lambda t: fn(t, **kw), x.to(cuda), dy.to(cuda))):
            torch.testing.assert_close(d, r, rtol=4 * torch.finfo(dtype).eps, atol=1e-6)


def test_fused_kernels_match_the_reference(cuda):
    g = torch.Generator().manual_seed(1)
    for dtype in DTYPES:
        x = torch.randn(37, 96, generator=g).to(dtype)
        b = torch.randn(96, generator=g).to(dtype)
        pair = torch.tensor([5, 9])
        kind, params = CF.activation_params("gelu", approximate="tanh")
        ops = torch.ops.cuact
        ref = ops.bias_activation(x, b, kind, params, 0.3, pair)[0]
        dev = ops.bias_activation(x.to(cuda), b.to(cuda), kind, params, 0.3, pair.to(cuda))[0]
        assert agree(dev.double().cpu(), ref.double(), dtype).all()  # the same mask, bit for bit
        torch.testing.assert_close(CF.swiglu(x.to(cuda)).cpu(), CF.swiglu(x))
        w = torch.rand(96, generator=g).to(dtype)  # one weight per channel (dimension 1)
        torch.testing.assert_close(CF.prelu(x.to(cuda), w.to(cuda)).cpu(), CF.prelu(x, w))


def test_runs_on_the_current_stream(cuda):
    x = torch.randn(1 << 20, device=cuda)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        y = CF.gelu(x)
    s.synchronize()
    torch.testing.assert_close(y, torch.nn.functional.gelu(x), rtol=1e-5, atol=1e-6)


def test_cuda_graph_replays_draw_fresh_masks(cuda):
    x = torch.randn(64, 128, device=cuda, requires_grad=True)
    b = torch.zeros(128, device=cuda, requires_grad=True)
    static_out = None
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up outside the graph
        CF.bias_activation(x, b, "relu", p=0.5).sum().backward()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    x.grad = None
    with torch.cuda.graph(graph):
        static_out = CF.bias_activation(x, b, "identity", p=0.5)
        static_out.sum().backward()
    masks = []
    for _ in range(3):
        graph.replay()
        torch.cuda.synchronize()
        kept = static_out != 0
        # the backward's mask is the forward's: dx = 2 where kept, 0 where dropped
        assert torch.equal(x.grad != 0, kept)
        masks.append(kept.clone())
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])


def test_float64_is_refused_with_a_clear_error(cuda):
    with pytest.raises(NotImplementedError, match="float64 runs on the CPU only"):
        CF.gelu(torch.ones(4, dtype=torch.float64, device=cuda))


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "tanh", "mish", "softplus"])
def test_higher_order_and_forward_mode_on_cuda(cuda, name):
    """Second derivatives, jvp and in-place gradients through the CUDA kernels
    (float32) agree with the CPU path's (float64) to fp32's precision."""
    fn = getattr(CF, name)
    x64 = torch.linspace(-4, 4, 257, dtype=torch.float64)

    def derivatives(x):
        x = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.sum(), x)
        _, tangent = torch.func.jvp(fn, (x.detach(),), (torch.ones_like(x),))
        xi = x.detach().clone().requires_grad_()
        y = fn(xi) if name == "gelu" else fn(xi * 1, inplace=True)  # gelu has no inplace
        y.sum().backward()
        return [t.double().cpu() for t in (g, gg, tangent, xi.grad)]

    for dev, ref in zip(derivatives(x64.float().to(cuda)), derivatives(x64)):
        torch.testing.assert_close(dev, ref, atol=1e-5, rtol=1e-4)
