"""The GLU of MoE experts (cuact.functional.clamped_swiglu, gated's limit,
offset and weight; the moe_glu operators) against plain-PyTorch forms of the
published formulas, computed in float64 on the inputs' values: gpt-oss's
clamped SwiGLU (on its own interleaved columns too), Megatron's weighted
SwiGLU, docs/SPEC.md's clamps for any gate and layout; the clamps' kinks and NaN as SPEC documents them; opcheck,
torch.compile, vmap, gradcheck; the refusals (second derivative, forward
mode, bad clamps and weights). The CUDA half (kernels against the CPU
reference) skips without a GPU (fails with CUACT_REQUIRE_GPU=1)."""
import math

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF
import cuact.nn
from parity import agree

ops = torch.ops.cuact
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
INF = math.inf
NAN = math.nan


def _f32(v):
    """A parameter as cuact holds it (cuact::Glu's and Activation's fields are fp32)."""
    return float(torch.tensor(v, dtype=torch.float32))


def _x(dtype, rows=12, d=20, spread=4.0, seed=0):
    """[rows, 2d] inputs; a spread of 4 puts about 8% of them past +-7."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, 2 * d, generator=g, dtype=torch.float64) * spread).to(dtype)


def _w(shape, dtype, seed=1):
    """Routing weights in (0, 1], a few negative (cuact does not assume a sign)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(shape, generator=g, dtype=torch.float64)
    return torch.where(w < 0.1, -w, w).to(dtype)


def _dy(shape, dtype, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


# ------------------------------------------------------------------ the published formulas

def gpt_oss_swiglu(x, alpha=1.702, limit=7.0):
    """gpt-oss's swiglu (gpt_oss/torch/model.py), its halves taken in cuact's
    layout: x_glu the first half, x_linear the second (gpt-oss interleaves them)."""
    x_glu, x_linear = x.chunk(2, dim=-1)
    x_glu = x_glu.clamp(min=None, max=limit)
    x_linear = x_linear.clamp(min=-limit, max=limit)
    out_glu = x_glu * torch.sigmoid(alpha * x_glu)
    return out_glu * (x_linear + 1)


def gpt_oss_swiglu_interleaved(x, alpha=1.702, limit=7.0):
    """gpt-oss's swiglu as published: the halves interleaved, x_glu the even
    columns, x_linear the odd ones (cuact's interleave=1)."""
    x_glu, x_linear = x[..., ::2], x[..., 1::2]
    x_glu = x_glu.clamp(min=None, max=limit)
    x_linear = x_linear.clamp(min=-limit, max=limit)
    out_glu = x_glu * torch.sigmoid(alpha * x_glu)
    return out_glu * (x_linear + 1)


def glu_columns(d, interleave=0, gate_first=True):
    """The columns of a row of x [2d] that output column c reads, as index
    tensors (gated, linear): the halves (interleave 0), or blocks of k columns
    of each in turn, the gated half's first when gate_first."""
    k = interleave or d
    c = torch.arange(d)
    block, at = 2 * k * (c // k), c % k
    first, second = block + at, block + k + at
    return (first, second) if gate_first else (second, first)


def megatron_weighted_swiglu(x, w):
    """Megatron-LM's weighted_swiglu (its reference form): swiglu(y) * weights."""
    a, b = x.chunk(2, dim=-1)
    return F.silu(a) * b * w[..., None]


def spec_glu(x, act, gate_first=True, limit=INF, offset=0.0, w=None, interleave=0):
    """docs/SPEC.md, "Gated activations": act(min(g, limit)) *
    (clamp(u, -limit, limit) + offset) (* w per row); g and u the columns
    of the layout (glu_columns)."""
    gi, ui = glu_columns(x.shape[-1] // 2, interleave, gate_first)
    g, u = x[..., gi], x[..., ui]
    y = act(g.clamp(max=limit)) * (u.clamp(-limit, limit) + offset)
    return y if w is None else y * w[..., None]


def _run(fn, x, w, dy):
    """fn(x, w) and its gradients in x and w (None for no weight), by autograd."""
    x = x.detach().clone().requires_grad_()
    w = None if w is None else w.detach().clone().requires_grad_()
    y = fn(x, w)
    y.backward(dy)
    return y.detach(), x.grad, None if w is None else w.grad


def _reference(fn, x, w, dy):
    """fn in float64 on the inputs' values."""
    return _run(fn, x.double(), None if w is None else w.double(), dy.double())


def _assert_agree(ours, ref, dtype):
    """The package's rule (parity.agree): both NaN, equal, or within the
    dtype's ulps (float32: 4; float16, bfloat16: 1)."""
    assert ours.shape == ref.shape and ours.dtype == dtype
    ok = agree(ours.double(), ref, dtype)
    assert ok.all(), (ours[~ok][:5], ref[~ok][:5])


def _check(ours_fn, ref_fn, x, w=None, limit=INF):
    """cuact's value and gradients (x's, and w's in w's dtype) against the
    float64 reference's; x's gradient but where |x| is the limit itself:
    there SPEC passes it, as torch.clamp did, but PyTorch 2.1x's clamp gives
    0 (the minimum-norm subgradient): test_gradient_at_the_clamps checks it."""
    dy = _dy((*x.shape[:-1], x.shape[-1] // 2), x.dtype)
    ours = _run(ours_fn, x, w, dy)
    ref = _reference(ref_fn, x, w, dy)
    _assert_agree(ours[0], ref[0], x.dtype)
    off_kinks = x.double().abs() != limit
    _assert_agree(ours[1][off_kinks], ref[1][off_kinks], x.dtype)
    if w is not None:
        _assert_agree(ours[2], ref[2], w.dtype)


# ------------------------------------------------------------------ parity

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_clamped_swiglu_matches_gpt_oss(dtype):
    x = _x(dtype)
    assert (x.abs() > 7).any() and (x.abs() < 7).any()
    _check(lambda v, _: CF.clamped_swiglu(v), lambda v, _: gpt_oss_swiglu(v, _f32(1.702)), x,
           limit=7.0)


@pytest.mark.parametrize("weight_dtype", ["float32", "input's"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_weighted_swiglu_matches_megatron(dtype, weight_dtype):
    x = _x(dtype, spread=2.0)
    w = _w(x.shape[0], torch.float32 if weight_dtype == "float32" else dtype)
    _check(lambda v, u: CF.swiglu(v, weight=u), megatron_weighted_swiglu, x, w)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_weighted_clamped_swiglu(dtype):
    """gpt-oss's expert output scaled by its routing weight, in one call."""
    x, w = _x(dtype), _w(12, torch.float32)
    _check(lambda v, u: CF.clamped_swiglu(v, weight=u),
           lambda v, u: gpt_oss_swiglu(v, _f32(1.702)) * u[:, None], x, w, 7.0)


def _gelu(t):
    """gelu through erfc: F.gelu's 1 + erf cancels in float64 for t << 0."""
    return t * 0.5 * torch.special.erfc(-t / math.sqrt(2))


# Other gates, halves, limits and offsets against SPEC's formula:
# (cuact activation and its parameters, torch form, gate, limit, offset).
SPEC_CASES = {
    "gelu, gate second": ("gelu", {}, _gelu, "second", 3.0, 0.0),
    "sigmoid (glu), negative offset": ("sigmoid", {}, torch.sigmoid, "second", 2.5, -0.5),
    "silu, offset only": ("silu", {}, F.silu, "first", None, 1.0),
    "relu, fractional limit": ("relu", {}, F.relu, "first", 0.75, 0.25),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_clamps_of_any_gate_match_the_spec(dtype, case):
    kind, params, act, gate, limit, offset = SPEC_CASES[case]
    x, w = _x(dtype, spread=2.5), _w(12, dtype)
    lim = INF if limit is None else _f32(limit)
    _check(lambda v, u: CF.gated(v, kind, -1, gate, limit=limit, offset=offset, weight=u,
                                 **params),
           lambda v, u: spec_glu(v, act, gate == "first", lim, _f32(offset), u), x, w, lim)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_interleaved_clamped_swiglu_matches_gpt_oss(dtype):
    """interleave=1 on gpt-oss's own columns (x[..., ::2] the gate,
    x[..., 1::2] the linear half), scaled by a routing weight: the value and
    the gradients of x and the weight."""
    x, w = _x(dtype), _w(12, torch.float32)
    assert (x.abs() > 7).any() and (x.abs() < 7).any()
    _check(lambda v, u: CF.clamped_swiglu(v, weight=u, interleave=1),
           lambda v, u: gpt_oss_swiglu_interleaved(v, _f32(1.702)) * u[:, None], x, w, 7.0)
    _check(lambda v, _: CF.clamped_swiglu(v, interleave=1),
           lambda v, _: gpt_oss_swiglu_interleaved(v, _f32(1.702)), x, None, 7.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_interleave_32_gate_second_matches_the_spec(dtype):
    """Transformer Engine's glu_interleave_size (32), the linear half's block
    first (gate second), clamps, an offset and a weight in the input's dtype."""
    x, w = _x(dtype, rows=4, d=64, spread=2.5), _w(4, dtype)
    _check(lambda v, u: CF.gated(v, "gelu", gate="second", limit=3.0, offset=-0.5, weight=u,
                                 interleave=32),
           lambda v, u: spec_glu(v, _gelu, False, 3.0, -0.5, u, interleave=32), x, w, 3.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
def test_interleave_of_d_is_the_halves(dtype):
    """One block of each half per row: the split halves' values and
    gradients bit for bit (without clamps: the plain glu's)."""
    x, w = _x(dtype, rows=6, d=10), _w(6, dtype)
    dy = _dy((6, 10), dtype)
    for gate in ("first", "second"):
        for kw in (dict(limit=2.0, offset=0.5, weight=w), dict()):
            halves = _run(lambda v, u: CF.gated(v, "silu", gate=gate, **{**kw, "weight": u}),
                          x, kw.get("weight"), dy)
            blocks = _run(lambda v, u: CF.gated(v, "silu", gate=gate, interleave=10,
                                                **{**kw, "weight": u}), x, kw.get("weight"), dy)
            for a, b in zip(halves, blocks):
                assert (a is None and b is None) or torch.equal(a, b)


# ------------------------------------------------------------------ kinks and NaN

@pytest.mark.parametrize("dtype", DTYPES + [torch.float64], ids=str)
def test_gradient_at_the_clamps(dtype):
    """At the limit the gradient passes (SPEC: the unclamped function's
    gradient there), just past it it is 0, just inside it passes; the value
    past the limit is the value at it."""
    L = torch.tensor(7.0, dtype=dtype)
    above = float(torch.nextafter(L, torch.tensor(INF, dtype=dtype)))
    below = float(torch.nextafter(L, torch.tensor(0.0, dtype=dtype)))
    gate = [7.0, above, below, 1, 1, 1, 1, 1, 1]
    linear = [1, 1, 1, 7.0, -7.0, above, -above, below, -below]
    x = torch.tensor([gate + linear], dtype=dtype)
    dy = torch.ones(1, 9, dtype=dtype)
    y, dx, _ = _run(lambda v, _: CF.clamped_swiglu(v), x, None, dy)
    dg, du = dx[0, :9], dx[0, 9:]
    assert (dg[[0, 2]] != 0).all() and dg[1] == 0  # the gate: min(g, limit)
    assert (du[[3, 4, 7, 8]] != 0).all() and (du[[5, 6]] == 0).all()  # clamp(u, -limit, limit)
    assert y[0, 1] == y[0, 0] and y[0, 5] == y[0, 3] and y[0, 6] == y[0, 4]
    # the formula elsewhere; at the limit itself, its gradient without the clamps
    _check(lambda v, _: CF.clamped_swiglu(v), lambda v, _: gpt_oss_swiglu(v, _f32(1.702)), x,
           limit=7.0)
    at_limit = x.abs() == 7
    unclamped = _reference(lambda v, _: gpt_oss_swiglu(v, _f32(1.702), INF), x, None, dy)[1]
    _assert_agree(dx[at_limit], unclamped[at_limit], dtype)


@pytest.mark.parametrize("dtype", DTYPES + [torch.float64], ids=str)
def test_nan_propagates(dtype):
    """NaN passes through the clamps: a NaN gate gives NaN in y and in both
    halves' gradients; a NaN linear half gives NaN in y and in the gate's
    gradient, its own gradient dy * act(g') stays a number; a NaN anywhere in a
    row makes its weight's gradient NaN. (torch.clamp's backward gives 0 at
    NaN: SPEC takes NaN, so this is checked against SPEC, not torch.)"""
    x = torch.tensor([[NAN, 1.0, 9.0, 2.0, 1.0, NAN, 1.0, -9.0],
                      [0.5, 1.0, 9.0, 2.0, 1.0, 3.0, 1.0, -9.0]], dtype=dtype)
    w = torch.tensor([0.5, 2.0], dtype=dtype)
    dy = torch.ones(2, 4, dtype=dtype)
    y, dx, dw = _run(lambda v, u: CF.clamped_swiglu(v, weight=u), x, w, dy)
    nan = y.isnan()
    assert nan[0, 0] and nan[0, 1] and not nan[0, 2:].any() and not nan[1].any()
    assert dx[0, 0].isnan() and dx[0, 4].isnan()  # NaN gate: both halves
    assert dx[0, 1].isnan() and not dx[0, 5].isnan()  # NaN linear half: the gate's only
    silu_1 = 1 / (1 + math.exp(-_f32(1.702)))  # dy * w * silu(1)
    torch.testing.assert_close(dx[0, 5].double(), torch.tensor(0.5 * silu_1, dtype=torch.float64),
                               rtol=2 * torch.finfo(dtype).eps, atol=0)
    assert not dx[0, [2, 3, 6, 7]].isnan().any() and not dx[1].isnan().any()
    assert dw[0].isnan() and not dw[1].isnan()
    # rows without NaN: the formula's values
    ref = _reference(lambda v, u: gpt_oss_swiglu(v, _f32(1.702)) * u[:, None], x[1:], w[1:],
                     dy[1:])
    _assert_agree(y[1:], ref[0], dtype)
    _assert_agree(dx[1:], ref[1], dtype)


def test_infinite_inputs():
    """+inf past a limit acts as the limit, its gradient 0; -inf in the gate
    (no clamp from below) gives silu's limits: 0, gradient 0."""
    x = torch.tensor([[INF, 1.0, 2.0, INF], [-INF, 2.0, -INF, 3.0]])
    y, dx, _ = _run(lambda v, _: CF.clamped_swiglu(v), x, None, torch.ones(2, 2))
    at_limits = CF.clamped_swiglu(torch.tensor([[7.0, 1.0, 2.0, 7.0], [0.0, 2.0, -7.0, 3.0]]))
    assert torch.equal(y[0], at_limits[0]) and y[1, 1] == at_limits[1, 1] and y[1, 0] == 0
    assert dx.isfinite().all() and (dx[[0, 0, 1, 1], [0, 3, 0, 2]] == 0).all()


# ------------------------------------------------------------------ shapes and the plain path

def test_without_clamps_or_weight_the_plain_glu_runs(monkeypatch):
    """No limit, offset or weight: the glu operator, as before; with them:
    moe_glu. A limit of inf and offset 0 give the plain values bit for bit."""
    import cuact.functional as module
    names = []
    real = module.call
    monkeypatch.setattr(module, "call", lambda name, *a: names.append(name) or real(name, *a))
    x = _x(torch.float32)
    plain = CF.swiglu(x)
    CF.gated(x, "silu", limit=None, offset=0.0)
    assert names == ["glu", "glu"]
    names.clear()
    assert torch.equal(CF.gated(x, "silu", limit=INF), plain)
    assert names == ["moe_glu"]
    names.clear()
    CF.swiglu(x, interleave=1)
    assert names == ["moe_glu"]
    kind, params = CF.activation_params("silu")
    dy = _dy((12, 20), torch.float32)
    dx, dw = ops.moe_glu_backward(x, None, dy, kind, params, True, INF, 0.0, False)
    assert torch.equal(dx, ops.glu_backward(x, dy, kind, params, True)) and dw.numel() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_dim_and_weight_shapes(dtype):
    """`dim` anywhere; the weight in the input's shape without `dim`, or with
    `dim` of size 1 (Megatron's [tokens, 1]); its gradient in its own shape."""
    x = _x(dtype, rows=6, d=5).reshape(2, 3, 10)
    w = _w((2, 3), dtype)
    y, dx, dw = _run(lambda v, u: CF.clamped_swiglu(v, weight=u, limit=2.0), x, w,
                     _dy((2, 3, 5), dtype))
    for dim in (0, 1):
        xt = x.movedim(-1, dim)
        dyt = _dy((2, 3, 5), dtype).movedim(-1, dim)
        for wt in (w, w.unsqueeze(-1).movedim(-1, dim)):
            got = _run(lambda v, u: CF.clamped_swiglu(v, dim, weight=u, limit=2.0), xt, wt, dyt)
            assert torch.equal(got[0], y.movedim(-1, dim))
            assert torch.equal(got[1], dx.movedim(-1, dim))
            assert got[2].shape == wt.shape and torch.equal(got[2].reshape(w.shape), dw)


def test_weight_without_grad_and_weight_grad_alone():
    x, w = _x(torch.float32), _w(12, torch.float32)
    xa = x.clone().requires_grad_()
    CF.swiglu(xa, weight=w).sum().backward()  # no dweight asked for
    wa = w.clone().requires_grad_()
    CF.swiglu(x, weight=wa).sum().backward()  # dweight alone
    ref = _reference(megatron_weighted_swiglu, x, w, torch.ones(12, 20))
    _assert_agree(xa.grad, ref[1], torch.float32)
    _assert_agree(wa.grad, ref[2], torch.float32)


def test_empty_inputs():
    """No rows: empty results. Rows of d = 0: y empty, dweight zeros."""
    for x, w in ((torch.empty(0, 8), torch.empty(0)), (torch.empty(3, 0), torch.ones(3))):
        y, dx, dw = _run(lambda v, u: CF.clamped_swiglu(v, weight=u), x, w,
                         torch.empty(x.shape[0], x.shape[1] // 2))
        assert y.shape == (x.shape[0], x.shape[1] // 2) and dx.shape == x.shape
        assert torch.equal(dw, torch.zeros_like(w))
    # d = 0 takes any interleave (none to divide)
    assert CF.clamped_swiglu(torch.empty(3, 0), interleave=3).shape == (3, 0)


def test_gradcheck_in_float64():
    """x and the weight, away from the kinks (finite differences cross none)."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 10, generator=g, dtype=torch.float64) * 6 - 3
    x = torch.where((x.abs() - 2).abs() < 0.05, x + 0.1, x).requires_grad_()
    w = _w(4, torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda v, u: CF.clamped_swiglu(v, limit=2.0, weight=u),
                                    (x, w))
    assert torch.autograd.gradcheck(lambda v, u: CF.gated(v, "gelu", gate="second", limit=2.0,
                                                          offset=0.5, weight=u), (x, w))
    assert torch.autograd.gradcheck(lambda v, u: CF.clamped_swiglu(v, limit=2.0, weight=u,
                                                                  interleave=1), (x, w))


def test_module():
    x, w = _x(torch.float32), _w(12, torch.float32)
    m = cuact.nn.ClampedSwiGLU()
    assert torch.equal(m(x, w), CF.clamped_swiglu(x, weight=w))
    assert torch.equal(m(x), CF.clamped_swiglu(x))
    assert torch.equal(cuact.nn.ClampedSwiGLU(alpha=1.0, limit=3.0, offset=0.0)(x),
                       CF.gated(x, "silu", limit=3.0))
    assert torch.equal(cuact.nn.SwiGLU()(x, w), CF.swiglu(x, weight=w))
    assert torch.equal(cuact.nn.ClampedSwiGLU(interleave=1)(x, w),
                       CF.clamped_swiglu(x, weight=w, interleave=1))
    assert torch.equal(CF.swiglu(x, interleave=1), CF.gated(x, "silu", interleave=1))
    gi, ui = glu_columns(20, 1)
    assert torch.equal(CF.swiglu(x, interleave=1), CF.swiglu(torch.cat((x[:, gi], x[:, ui]), -1)))


# ------------------------------------------------------------------ autograd's limits

def test_second_derivative_raises():
    """A gradient taken with create_graph=True raises when differentiated
    again (never zeros); so does torch.func's grad of grad, and
    differentiating the backward operator itself."""
    x, w = _x(torch.float32).requires_grad_(), _w(12, torch.float32).requires_grad_()
    gx, gw = torch.autograd.grad(CF.clamped_swiglu(x, weight=w).sum(), (x, w),
                                 create_graph=True)
    for g in (gx, gw):
        with pytest.raises(RuntimeError, match="no second derivative"):
            (g.pow(2).sum() + x.sum() + w.sum()).backward()
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.func.grad(lambda v: torch.func.grad(
            lambda u: CF.clamped_swiglu(u).sum())(v).pow(2).sum())(x.detach())
    kind, params = CF.activation_params("silu", beta=1.702)
    dx, _ = ops.moe_glu_backward(x, None, torch.ones(12, 20), kind, params, True, 7.0, 1.0,
                                 False)
    with pytest.raises(RuntimeError, match="no second derivative"):
        dx.sum().backward()
    # the first derivative under create_graph=True is the plain one
    plain = torch.autograd.grad(CF.clamped_swiglu(x, weight=w).sum(), (x, w))
    assert torch.equal(gx.detach(), plain[0]) and torch.equal(gw.detach(), plain[1])


def test_forward_mode_raises():
    x = _x(torch.float32)
    with pytest.raises(NotImplementedError, match="forward-mode"):
        torch.func.jvp(lambda v: CF.clamped_swiglu(v), (x,), (torch.ones_like(x),))
    import torch.autograd.forward_ad as fwad
    with fwad.dual_level(), pytest.raises(NotImplementedError, match="forward-mode"):
        CF.swiglu(fwad.make_dual(x, torch.ones_like(x)), weight=_w(12, torch.float32))


@pytest.mark.parametrize("interleave", [0, 2])
def test_vmap_and_torch_func_grad(interleave):
    """The batch as more rows: the values and gradients of a per-entry loop,
    with a batched or a shared weight, either layout."""
    x = torch.stack([_x(torch.float32, rows=4, d=6, seed=s) for s in range(3)])
    w = torch.stack([_w(4, torch.float32, seed=s) for s in range(3)])

    def f(v, u):
        return CF.clamped_swiglu(v, weight=u, interleave=interleave)

    def loss(v, u):
        return f(v, u).pow(2).sum()
    grad = torch.func.grad(loss, argnums=(0, 1))
    for in_dims, ws in (((0, 0), w), ((0, None), w[0])):
        entries = [(x[i], ws[i] if in_dims[1] == 0 else ws) for i in range(3)]
        assert torch.equal(torch.func.vmap(f, in_dims)(x, ws),
                           torch.stack([f(*e) for e in entries]))
        gx, gw = torch.func.vmap(grad, in_dims)(x, ws)
        assert torch.equal(gx, torch.stack([grad(*e)[0] for e in entries]))
        assert torch.equal(gw, torch.stack([grad(*e)[1] for e in entries]))
    # the backward operator's own rule
    kind, params = CF.activation_params("silu", beta=1.702)
    dy = torch.stack([_dy((4, 6), torch.float32, seed=s) for s in range(3)])
    args = (kind, params, True, 7.0, 1.0, True, interleave)
    got = torch.func.vmap(lambda v, u, g: ops.moe_glu_backward(v, u, g, *args))(x, w, dy)
    for i in range(3):
        want = ops.moe_glu_backward(x[i], w[i], dy[i], *args)
        assert torch.equal(got[0][i], want[0]) and torch.equal(got[1][i], want[1])


# ------------------------------------------------------------------ the operators

def _op_samples(dtype):
    """(operator, args): clamps or none, a weight of the input's dtype or
    float32 (float64 for float64 data) or none, both gates, leading
    dimensions, dweight asked for or not."""
    silu = CF.activation_params("silu", beta=1.702)
    sig = CF.activation_params("sigmoid")
    wide = torch.float64 if dtype == torch.float64 else torch.float32
    x = _x(dtype, rows=3, d=4).requires_grad_()
    x3 = _x(dtype, rows=6, d=4, seed=5).reshape(2, 3, 8).requires_grad_()
    w = _w(3, dtype).requires_grad_()
    w32 = _w((2, 3), wide).requires_grad_()
    dy = _dy((3, 4), dtype)
    x8 = _x(dtype, rows=2, d=8, seed=6).requires_grad_()
    w8 = _w(2, wide).requires_grad_()
    dy8 = _dy((2, 8), dtype)
    return [
        (ops.moe_glu, (x, None, *silu, True, 7.0, 1.0)),
        (ops.moe_glu, (x, w, *silu, True, 2.0, 1.0)),
        (ops.moe_glu, (x3, w32, *sig, False, INF, 0.0)),
        (ops.moe_glu, (x3, w32.detach(), *sig, False, 1.5, -0.5)),
        (ops.moe_glu_backward, (x.detach(), w.detach(), dy, *silu, True, 2.0, 1.0, True)),
        (ops.moe_glu_backward, (x.detach(), w.detach(), dy, *silu, True, 2.0, 1.0, False)),
        (ops.moe_glu_backward, (x.detach(), None, dy, *sig, False, 3.0, 0.0, True)),
        # the layouts: gpt-oss's interleave 1, blocks of 4 with the gate second
        (ops.moe_glu, (x8, w8, *silu, True, 7.0, 1.0, 1)),
        (ops.moe_glu, (x3, None, *sig, False, 1.5, -0.5, 2)),
        (ops.moe_glu_backward, (x8.detach(), w8.detach(), dy8, *silu, True, 7.0, 1.0, True, 1)),
        (ops.moe_glu_backward, (x8.detach(), None, dy8, *sig, False, INF, 0.0, False, 4)),
    ]


OP_DTYPES = DTYPES + [torch.float64]
OP_CASES = [(dt, i) for dt in OP_DTYPES for i in range(len(_op_samples(torch.float32)))]


@pytest.mark.parametrize("dtype,index", OP_CASES, ids=[f"{dt}-{i}" for dt, i in OP_CASES])
def test_opcheck(dtype, index):
    op, args = _op_samples(dtype)[index]
    torch.library.opcheck(op, args)


class Expert(torch.nn.Module):
    """An MoE expert's feed-forward layer: up projection, clamped SwiGLU scaled
    by the tokens' routing weights, down projection."""

    def __init__(self, d=8, ffn=16):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.up = torch.nn.Parameter(torch.randn(d, 2 * ffn, generator=g))
        self.down = torch.nn.Parameter(torch.randn(ffn, d, generator=g) / 4)

    def forward(self, x, routing):
        return CF.clamped_swiglu(x @ self.up, weight=routing) @ self.down


def test_compiled_expert_matches_eager():
    """torch.compile(fullgraph=True): no graph break; the output and the
    gradients of the parameters, the input and the routing weights as eager's."""
    torch._dynamo.reset()
    model = Expert()
    g = torch.Generator().manual_seed(9)
    x, routing = torch.randn(10, 8, generator=g) * 2, torch.rand(10, generator=g)
    results = []
    for fn in (model, torch.compile(model, fullgraph=True)):
        model.zero_grad()
        xi, ri = x.clone().requires_grad_(), routing.clone().requires_grad_()
        y = fn(xi, ri)
        y.pow(2).sum().backward()
        results.append([y.detach(), xi.grad, ri.grad] + [p.grad.clone()
                                                          for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------ refusals

x_ = _x(torch.float32, rows=3, d=2)
BAD = {
    "limit 0": (RuntimeError, "limit must be > 0", lambda: CF.clamped_swiglu(x_, limit=0.0)),
    "negative limit": (RuntimeError, "limit must be > 0",
                       lambda: CF.gated(x_, "silu", limit=-1.0)),
    "NaN limit": (RuntimeError, "limit must be > 0", lambda: CF.clamped_swiglu(x_, limit=NAN)),
    "limit 0 in float32": (RuntimeError, "rounds to 0",
                           lambda: CF.clamped_swiglu(x_, limit=1e-50)),
    "infinite offset": (RuntimeError, "offset must be finite",
                        lambda: CF.clamped_swiglu(x_, offset=INF)),
    "NaN offset": (RuntimeError, "offset must be finite",
                   lambda: CF.gated(x_, "silu", offset=NAN)),
    "offset past float32": (RuntimeError, "offset must be finite",
                            lambda: CF.clamped_swiglu(x_, offset=1e300)),
    "weight of the wrong length": (RuntimeError, "one weight per row",
                                   lambda: CF.clamped_swiglu(x_, weight=torch.ones(2))),
    "weight that would broadcast": (RuntimeError, "one weight per row",
                                    lambda: CF.swiglu(x_, weight=torch.ones(1))),
    "weight per element": (RuntimeError, "one weight per row",
                           lambda: CF.swiglu(x_, weight=torch.ones(3, 2))),
    "float64 weight, float32 data": (TypeError, "weight is",
                                     lambda: CF.swiglu(x_, weight=torch.ones(3).double())),
    "float32 weight, float64 data": (TypeError, "weight is",
                                     lambda: CF.swiglu(x_.double(), weight=torch.ones(3))),
    "integer weight": (TypeError, "weight is", lambda: CF.swiglu(x_, weight=torch.ones(3).int())),
    "weight on another device": (RuntimeError, "weight is on meta",
                                 lambda: CF.swiglu(x_, weight=torch.ones(3, device="meta"))),
    "weight not a tensor": (TypeError, "weight must be a Tensor",
                            lambda: CF.swiglu(x_, weight=[1.0, 1.0, 1.0])),
    "odd halving dimension": (RuntimeError, "Halving dimension must be even",
                              lambda: CF.clamped_swiglu(torch.ones(3, 5))),
    "integer input": (NotImplementedError, "not implemented for",
                      lambda: CF.clamped_swiglu(torch.ones(3, 4, dtype=torch.int64))),
    "negative interleave": (RuntimeError, "interleave is negative",
                            lambda: CF.clamped_swiglu(x_, interleave=-1)),
    "interleave not dividing d": (RuntimeError, "interleave must divide d",
                                  lambda: CF.swiglu(_x(torch.float32, rows=2, d=6),
                                                    interleave=4)),
    "interleave past d": (RuntimeError, "interleave must divide d",
                          lambda: CF.clamped_swiglu(x_, interleave=4)),
    "interleave not an int": (TypeError, "interleave must be an int",
                              lambda: CF.clamped_swiglu(x_, interleave=1.0)),
    "unknown activation": (ValueError, "unknown activation",
                           lambda: CF.gated(x_, "nope", limit=1.0)),
    "a gate the MoE forms are not built for": (RuntimeError, "built for the gates",
                                               lambda: CF.gated(x_, "hardswish", limit=1.0)),
    "weighted, with such a gate": (RuntimeError, "built for the gates",
                                   lambda: CF.gated(x_, "mish", weight=torch.ones(3))),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_arguments_raise(name):
    error, match, call = BAD[name]
    with pytest.raises(error, match=match):
        call()


def test_operators_refuse_what_the_functions_never_pass():
    kind, params = CF.activation_params("silu")
    x = _x(torch.float32, rows=3, d=2)
    with pytest.raises(RuntimeError, match="must be contiguous"):
        ops.moe_glu(x, torch.ones(3, 2)[:, 0], kind, params, True, 7.0, 1.0)
    with pytest.raises(RuntimeError, match="one weight per row"):
        ops.moe_glu(x, torch.ones(3, 1), kind, params, True, 7.0, 1.0)  # the function's [rows, 1]
    with pytest.raises(RuntimeError, match="dy has"):
        ops.moe_glu_backward(x, None, torch.ones(2, 2), kind, params, True, 7.0, 1.0, False)
    with pytest.raises(TypeError, match="dy is"):
        ops.moe_glu_backward(x, None, torch.ones(3, 2).double(), kind, params, True, 7.0, 1.0,
                             False)
    for t in (x, x.double()):  # the kernels' path and float64's
        with pytest.raises(RuntimeError, match="invalid_parameter: glu interleave is negative"):
            ops.moe_glu(t, None, kind, params, True, 7.0, 1.0, -2)
        with pytest.raises(RuntimeError, match="invalid_size: glu interleave must divide d"):
            ops.moe_glu_backward(t, None, torch.ones(3, 2, dtype=t.dtype), kind, params, True,
                                 7.0, 1.0, False, 3)


def test_fake_kernels_refuse_what_the_kernels_refuse():
    kind, params = CF.activation_params("silu")
    with torch._subclasses.fake_tensor.FakeTensorMode():
        x, w = torch.empty(3, 4), torch.empty(3)
        with pytest.raises(RuntimeError, match="limit must be > 0"):
            ops.moe_glu(x, w, kind, params, True, 0.0, 1.0)
        with pytest.raises(RuntimeError, match="offset must be finite"):
            ops.moe_glu(x, w, kind, params, True, 7.0, INF)
        with pytest.raises(RuntimeError, match="one weight per row"):
            ops.moe_glu(x, torch.empty(4), kind, params, True, 7.0, 1.0)
        with pytest.raises(TypeError, match="weight is"):
            ops.moe_glu(x, w.double(), kind, params, True, 7.0, 1.0)
        with pytest.raises(RuntimeError, match="even"):
            ops.moe_glu(torch.empty(3, 5), w, kind, params, True, 7.0, 1.0)
        with pytest.raises(RuntimeError, match="invalid_parameter: glu interleave is negative"):
            ops.moe_glu(x, w, kind, params, True, 7.0, 1.0, -1)
        with pytest.raises(RuntimeError, match="invalid_size: glu interleave must divide d"):
            ops.moe_glu(x, w, kind, params, True, 7.0, 1.0, 3)
        with pytest.raises(RuntimeError, match="invalid_size: glu interleave must divide d"):
            ops.moe_glu_backward(x, w, torch.empty(3, 2), kind, params, True, 7.0, 1.0, True, 4)
        assert ops.moe_glu(x, w, kind, params, True, 7.0, 1.0, 1).shape == (3, 2)
        assert ops.moe_glu(torch.empty(3, 0), None, kind, params, True, 7.0, 1.0,
                           5).shape == (3, 0)
        x16 = x.bfloat16()
        y = ops.moe_glu(x16, w, kind, params, True, 7.0, 1.0)
        assert y.shape == (3, 2) and y.dtype == torch.bfloat16
        dx, dw = ops.moe_glu_backward(x16, w, torch.empty(3, 2).bfloat16(), kind, params, True,
                                      7.0, 1.0, True)
        assert dx.dtype == torch.bfloat16 and dw.shape == (3,) and dw.dtype == torch.float32
        _, dw = ops.moe_glu_backward(x, w, torch.empty(3, 2), kind, params, True, 7.0, 1.0, False)
        assert dw.shape == (0,)


# ------------------------------------------------------------------ CUDA

def _device_inputs(dtype, d=100):
    """Random rows (past the limits too), the clamps' kinks and NaN (d a
    multiple of 4)."""
    x = _x(dtype, rows=64, d=d)
    kinks = torch.tensor([7.0, 7.0, -7.0, 9.0, -9.0, NAN, 1.0, 0.5] * (d // 4), dtype=dtype)
    x[0], x[1] = kinks, kinks.roll(3)
    return x


# (interleave, d): the halves with d no multiple of a vector; gpt-oss's 1
# (element by element); 32 (TE's, whole vectors); 12 (fp32's vectors only)
DEVICE_LAYOUTS = [(0, 100), (1, 96), (32, 96), (12, 96)]


@pytest.mark.parametrize("interleave,d", DEVICE_LAYOUTS,
                         ids=[f"interleave{k}-d{d}" for k, d in DEVICE_LAYOUTS])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_kernels_match_the_reference(cuda, dtype, interleave, d):
    """y, dx and dweight of the device against the CPU reference, on a side
    stream, for each layout, within assert_near_reference's and
    assert_dweight_near_reference's tolerances; zeros (past a limit) and NaN
    where the reference has them."""
    x = _device_inputs(dtype, d)
    dy = _dy((64, d), dtype)
    silu = CF.activation_params("silu", beta=1.702)
    gelu = CF.activation_params("gelu")
    s = torch.cuda.Stream()
    for w in (None, _w(64, torch.float32), _w(64, dtype)):
        for params, gate_first, limit, offset in ((silu, True, 7.0, 1.0), (gelu, False, 3.0, -0.5)):
            args = (*params, gate_first, limit, offset)
            ref_y = ops.moe_glu(x, w, *args, interleave)
            ref_dx, ref_dw = ops.moe_glu_backward(x, w, dy, *args, True, interleave)
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                xd, wd = x.to(cuda), None if w is None else w.to(cuda)
                dev = [ops.moe_glu(xd, wd, *args, interleave),
                       *ops.moe_glu_backward(xd, wd, dy.to(cuda), *args, True, interleave)]
            s.synchronize()
            dev = [t.cpu() for t in dev]
            assert_near_reference(dev[0], ref_y)
            assert_near_reference(dev[1], ref_dx)
            gi, ui = glu_columns(d, interleave, gate_first)
            g, u = x[:, gi], x[:, ui]
            # the halves past a limit: gradient 0
            assert (dev[1][:, gi][g > limit] == 0).all()
            assert (dev[1][:, ui][u.abs() > limit] == 0).all()
            if w is not None:
                terms = (ops.moe_glu(x.double(), None, *args, interleave)
                         * dy.double()).abs().nansum(-1)
                assert_dweight_near_reference(dev[2], ref_dw, terms)


def assert_near_reference(dev, ref):
    """A device's y or dx against the CPU reference's: NaN where it has NaN;
    fp32 within 16 ulps, 16-bit data within one ulp (the kernels' fp32
    products rounded once) but for small values of a difference."""
    eps = torch.finfo(ref.dtype).eps * (16 if ref.dtype == torch.float32 else 1)
    assert torch.equal(dev.isnan(), ref.isnan())
    d, r = dev.double(), ref.double()
    tol = eps * r.abs() + eps * r.abs().nan_to_num().amax() / 16
    assert ((d - r).abs() <= tol).logical_or(r.isnan()).all()


def assert_dweight_near_reference(dev, ref, terms):
    """A device's dweight against the reference's, within fp32 sums'
    rounding of the row's terms (the sum of |glu(x) * dy|) and one rounding
    to the weight's dtype."""
    tol = 64 * 2.0 ** -24 * terms + torch.finfo(ref.dtype).eps * ref.double().abs()
    d, r = dev.double(), ref.double()
    assert torch.equal(d.isnan(), r.isnan())
    assert ((d - r).abs() <= tol).logical_or(r.isnan()).all()
