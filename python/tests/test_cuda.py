"""The suite's CUDA half: cuact's kernels (through the operators) against the
CPU reference, streams, CUDA graphs with fresh dropout masks, the fp8 outputs
within docs/ACCURACY.md's contract, and the clear error for float64. Skips
without a GPU (fails with CUACT_REQUIRE_GPU=1)."""
import math

import pytest
import torch

import cuact.functional as CF
from cases import ELEMENTWISE, dense_grid
from parity import agree, fp8_scale, fp8_values, ulp

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


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", [CF.softmax, CF.log_softmax, CF.softmin])
def test_softmax_backward_takes_the_forwards_mask(cuda, fn, dtype):
    # The gradient's hidden columns come from the mask's -inf entries and causal
    # (the same descriptor as the forward), on the device as in the reference.
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 3, 40, 70, generator=g) * 3).to(dtype)
    x[0, 1, 5, 2] = -math.inf if fn is not CF.softmin else math.inf  # visible, z = -inf
    dy = torch.randn(x.shape, generator=g).to(dtype)
    mask = torch.randn(3, 1, 70, generator=g).to(dtype)
    mask[0, 0, 3:9], mask[2, 0, 0] = -math.inf, -math.inf
    kw = dict(scale=0.5, causal=True, causal_offset=30)
    ref = _both(lambda t: fn(t, -1, mask=mask, **kw), x, dy)
    dev = _both(lambda t: fn(t, -1, mask=mask.to(cuda), **kw), x.to(cuda), dy.to(cuda))
    for r, d in zip(ref, dev):
        torch.testing.assert_close(d, r, rtol=4 * torch.finfo(dtype).eps, atol=1e-6)


def test_saturated_log_softmax_gradient_on_the_device(cuda):
    x = torch.tensor([-60000.0, 60000.0], dtype=torch.float16, device=cuda, requires_grad=True)
    y = CF.log_softmax(x, -1)
    y.backward(torch.tensor([1.0, 0.0], dtype=torch.float16, device=cuda))
    assert y.tolist() == [-math.inf, 0.0] and x.grad.tolist() == [1.0, -1.0]


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


# ------------------------------------------------------------------ fp8 outputs

FP8 = [torch.float8_e4m3fn, torch.float8_e5m2]
ops = torch.ops.cuact
FP32_BOUND = 11  # test_elementwise's largest fp32 bound, in ulp


def fp8_neighbours(a, b, fmt):
    """Code values a and b are equal (NaN with NaN) or neighbours in the format."""
    vals = fp8_values(fmt)
    ia = torch.searchsorted(vals, a.abs().nan_to_num(0.0).contiguous())
    ib = torch.searchsorted(vals, b.abs().nan_to_num(0.0).contiguous())
    same_side = (torch.sign(a) == torch.sign(b)) | (a == 0) | (b == 0)
    return (((ia - ib).abs() <= 1) & same_side) | (a == b) | (a.isnan() & b.isnan())


def fp8_within_contract(dev, ref, r, scale, backward, fmt):
    """docs/ACCURACY.md ("Quantized outputs") for a kernel's codes (float64
    tensors of code values) against the CPU reference's (the result r in
    double times the scale, rounded once): equal, or neighbours whose
    boundary lies within delta of v = r * scale, delta = (fp32 bound + 1/2)
    ulp32(r) * scale + 1/2 ulp32(v), with within_contract's allowances below
    FLT_MIN and, for gradients, 4 * 2^-24 near a zero of f' (times the scale)."""
    v = r * scale
    f32 = torch.float32
    floor = torch.finfo(f32).tiny + (4 * 2.0 ** -24 if backward else 0.0)
    delta = ((FP32_BOUND + 0.5) * ulp(r, f32) + floor) * scale + 0.5 * ulp(v, f32)
    near = (v - (dev + ref) / 2).abs() <= delta
    same = (dev == ref) | (dev.isnan() & ref.isnan())
    return same | (fp8_neighbours(dev, ref, fmt) & near)


def _close_amax(dev, ref):
    torch.testing.assert_close(dev.cpu(), ref, rtol=FP32_BOUND * 2.0 ** -23, atol=0)


ACTIVATION_CASES = [c for c in ELEMENTWISE if c.activation is not None]


@pytest.mark.parametrize("fmt", FP8, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=[c.label for c in ACTIVATION_CASES])
def test_fp8_kernels_match_the_reference(cuda, case, dtype, fmt):
    name, kw = case.activation
    x = dense_grid(case, dtype)
    x64 = x.double().requires_grad_()
    y64 = CF.activation(x64, name, **kw)  # the result in double (cuact's float64 path)
    (g64,) = torch.autograd.grad(y64, x64, torch.ones_like(y64))
    scale = torch.tensor([3.0 if fmt == torch.float8_e4m3fn else 300.0])
    forms = [(False, y64.detach(), lambda t, s: CF.activation_fp8(t, name, fmt, scale=s, **kw)),
             (True, g64, lambda t, s: CF.activation_backward_fp8(t, torch.ones_like(t), name, fmt,
                                                                 scale=s, **kw))]
    for backward, r, fn in forms:
        ref = fn(x, scale)  # the CPU reference
        dev = fn(x.to(cuda), scale.to(cuda))  # the delayed recipe: the same scale
        d, c = dev.data.double().cpu(), ref.data.double()
        ok = fp8_within_contract(d, c, r, float(scale), backward, fmt)
        assert ok.all(), (x[~ok][:5], r[~ok][:5], c[~ok][:5], d[~ok][:5])
        _close_amax(dev.amax, ref.amax)
        assert torch.equal(dev.scale.cpu(), scale) and torch.equal(dev.scale_inv.cpu(),
                                                                   ref.scale_inv)
        cur = fn(x.to(cuda), None)  # the current recipe: SPEC's scale from the device's amax
        _close_amax(cur.amax, ref.amax)
        assert float(cur.scale) == fp8_scale(fmt, float(cur.amax))
        assert float(cur.scale_inv) == float(torch.tensor(1 / float(cur.scale)))


def test_fp8_fused_kernels_match_the_reference(cuda):
    g = torch.Generator().manual_seed(11)
    pair = torch.tensor([3, 14])
    e4m3, e5m2 = FP8
    kind, params = CF.activation_params("gelu")
    for dtype in DTYPES:
        x = torch.randn(37, 96, generator=g).to(dtype)
        b = torch.randn(96, generator=g).to(dtype)
        dy = torch.randn(37, 96, generator=g).to(dtype)
        s = torch.tensor([30.0])
        for bias, p, so in ((b, 0.3, pair), (None, 0.0, None)):
            ref = ops.bias_activation_fp8(x, bias, kind, params, p, so, e4m3, s, 0, False)
            dev = ops.bias_activation_fp8(x.to(cuda), None if bias is None else bias.to(cuda),
                                          kind, params, p, None if so is None else so.to(cuda),
                                          e4m3, s.to(cuda), 0, False)
            d, c = dev[0].double().cpu(), ref[0].double()
            assert fp8_neighbours(d, c, e4m3).all()
            if p:  # the same mask: zeros where the plain form drops (by element index)
                kept = ops.bias_activation(torch.ones(x.shape), None,
                                           *CF.activation_params("identity"), p, so)[0]
                assert bool((d[kept == 0] == 0).all()) and bool((kept == 0).any())
        ref = ops.bias_activation_backward_fp8(x, b, dy, kind, params, e5m2, None, 0, False)
        dev = ops.bias_activation_backward_fp8(x.to(cuda), b.to(cuda), dy.to(cuda), kind, params,
                                               e5m2, None, 0, False)
        plain = ops.bias_activation_backward(x.to(cuda), b.to(cuda), dy.to(cuda), kind, params,
                                             0.0, None)
        torch.testing.assert_close(dev[4], plain[1])  # the plain form's dbias
        torch.testing.assert_close(dev[4].cpu(), ref[4])
        assert fp8_neighbours(dev[0].double().cpu(), ref[0].double(), e5m2).all()
        out = CF.swiglu_fp8(x.to(cuda), margin=1)
        assert fp8_neighbours(out.data.double().cpu(), CF.swiglu_fp8(x, margin=1).data.double(),
                              e4m3).all()


def test_fp8_runs_on_the_current_stream_and_in_a_cuda_graph(cuda):
    x = torch.randn(1 << 16, device=cuda)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        eager = CF.activation_fp8(x, "gelu")
    s.synchronize()
    _close_amax(eager.amax, CF.activation_fp8(x.cpu(), "gelu").amax)
    static_x = x.clone()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up outside the graph
        CF.activation_fp8(static_x, "gelu")
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = CF.activation_fp8(static_x, "gelu")  # the current recipe: no host sync
    for k in (1.0, 4.0):
        static_x.copy_(x * k)
        graph.replay()
        torch.cuda.synchronize()
        want = CF.activation_fp8(x * k, "gelu")
        assert torch.equal(static_out.scale, want.scale)
        assert torch.equal(static_out.data.view(torch.uint8), want.data.view(torch.uint8))
