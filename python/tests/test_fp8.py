"""The fp8 outputs (the *_fp8 functions and operators) on the CPU: the codes
are the plain result, computed in double by cuact's float64 path, times the
scale and rounded once (parity.round_fp8, written from the formats); the
recipes' words (scale, amax, scale_inv) follow docs/SPEC.md; dropout takes the
plain form's mask and dbias is the plain form's; layouts, empty inputs, vmap;
no gradient. softmax_fp8 is also compared here with PyTorch's own unfused
computation (its float64 softmax times the scale, a saturated cast). The
activations against PyTorch's unfused quantization: test_parity.py; bad
arguments: test_arguments.py."""
import math

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF
from parity import fp8_max, fp8_scale, round_fp8, torch_fp8

ops = torch.ops.cuact
E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


def _x(*shape, dtype=torch.float32, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * spread).to(dtype)


def _f32(v):
    return float(torch.tensor(v, dtype=torch.float32))


def _preactivation(x, b):
    """x + b as cuact forms it: in fp32 (rounded once), in double for float64 data."""
    z = x.double() + b.double()
    return z if x.dtype == torch.float64 else z.float().double()


def check_quantized(out, r, fmt, scale=None, margin=0, power_of_two=False):
    """out (a Float8Output) is r (the result in double) quantized: amax =
    fl32(max |r|), NaN excluded; the recipe's scale; scale_inv = fl32(1/scale);
    codes = round_fp8(r * scale), bit for bit on the value (NaN as NaN)."""
    assert out.data.dtype == fmt and out.data.shape == r.shape
    for w in out[1:]:
        assert w.dtype == torch.float32 and w.shape == (1,) and w.device == out.data.device
    finite = r[~r.isnan()]
    amax = _f32(float(finite.abs().max()) if finite.numel() else 0.0)
    assert float(out.amax) == amax
    want_scale = _f32(scale) if scale is not None else fp8_scale(fmt, amax, margin, power_of_two)
    assert float(out.scale) == want_scale
    assert float(out.scale_inv) == _f32(1 / want_scale)
    want = round_fp8(r.double() * want_scale, fmt)
    got = out.data.double()
    assert bool(((got == want) | (got.isnan() & want.isnan())).all()), (
        r[got != want][:5], got[got != want][:5], want[got != want][:5])


RECIPES = [(E4M3, dict(scale=torch.tensor([40.0]))), (E4M3, dict()),
           (E5M2, dict(scale=torch.tensor(0.75))), (E5M2, dict(margin=3, power_of_two=True))]


def _recipe_args(recipe):
    scale = recipe.get("scale")
    return (None if scale is None else float(scale), recipe.get("margin", 0),
            recipe.get("power_of_two", False))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fmt,recipe", RECIPES, ids=["e4m3-delayed", "e4m3-current",
                                                     "e5m2-delayed", "e5m2-current-p2"])
def test_activation_codes_are_the_result_rounded_once(fmt, recipe, dtype):
    x = _x(5, 40, dtype=dtype)
    x[0, :4] = torch.tensor([math.nan, 0.0, -0.0, 1e4 if dtype != torch.bfloat16 else 1e30])
    dy = _x(5, 40, dtype=dtype, seed=1)
    for name, kw in [("gelu", {}), ("silu", {}), ("leaky_relu", dict(negative_slope=0.2)),
                     ("softplus", dict(beta=2.0)), ("hardswish", {})]:
        r = CF.activation(x.double(), name, **kw)  # cuact's float64 path: the result in double
        check_quantized(CF.activation_fp8(x, name, fmt, **recipe, **kw), r, fmt,
                        *_recipe_args(recipe))
        x64 = x.double().clone().requires_grad_()
        (g,) = torch.autograd.grad(CF.activation(x64, name, **kw), x64, dy.double())
        check_quantized(CF.activation_backward_fp8(x, dy, name, fmt, **recipe, **kw), g, fmt,
                        *_recipe_args(recipe))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "elu"])
def test_backward_from_the_output(name):
    x = _x(64)
    y = CF.activation(x, name)
    dy = _x(64, seed=2)
    out = CF.activation_backward_fp8(y, dy, name, from_output=True)
    r = ops.activation_backward_from_output(y.double(), dy.double(),
                                            *CF.activation_params(name))
    check_quantized(out, r, E5M2)
    with pytest.raises(NotImplementedError, match="no backward from the output"):
        CF.activation_backward_fp8(x, dy, "gelu", from_output=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_bias_activation_with_dropout_takes_the_plain_mask(dtype):
    x, b = _x(16, 24, dtype=dtype), _x(24, dtype=dtype, seed=3)
    for p in (0.0, 0.3):
        out = CF.bias_activation_fp8(x, b, "gelu", p, generator=torch.Generator().manual_seed(9),
                                     scale=torch.tensor([20.0]))
        # the plain form, float64 path, same generator state: the same mask (by element
        # index) and 1/(1 - p)
        r = CF.bias_activation(_preactivation(x, b), None, "gelu", p,
                               generator=torch.Generator().manual_seed(9))
        check_quantized(out, r, E4M3, 20.0)
        if p:
            assert bool((out.data.double() == 0).float().mean() > 0.2)
    # without a bias: activation + dropout, the input's layout kept
    xt = x.t()
    out = CF.bias_activation_fp8(xt, None, "relu", 0.5, generator=torch.Generator().manual_seed(4))
    assert out.data.stride() == xt.stride()
    r = CF.bias_activation(xt.double(), None, "relu", 0.5,
                           generator=torch.Generator().manual_seed(4))
    check_quantized(out, r, E4M3)


def test_bias_activation_returns_the_pair_the_plain_backward_reads():
    x, b = _x(8, 12), _x(12, seed=1)
    kind, params = CF.activation_params("gelu")
    pair = torch.tensor([77, 5])
    *_, used = ops.bias_activation_fp8(x, b, kind, params, 0.5, pair, E4M3, None, 0, False)
    assert torch.equal(used, pair)
    y, used_plain = ops.bias_activation(x, b, kind, params, 0.5, pair)
    assert torch.equal(used, used_plain)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dact_dbias(dtype):
    x, b, dy = _x(33, 20, dtype=dtype), _x(20, dtype=dtype, seed=1), _x(33, 20, dtype=dtype, seed=2)
    kind, params = CF.activation_params("gelu", approximate="tanh")
    out, dbias = CF.bias_activation_backward_fp8(x, b, dy, "gelu", approximate="tanh")
    dx_plain, dbias_plain = ops.bias_activation_backward(x, b, dy, kind, params, 0.0, None)
    assert torch.equal(dbias, dbias_plain)  # the plain form's sums, bit for bit
    r = ops.activation_backward(_preactivation(x, b), dy.double(), kind, params)
    check_quantized(out, r, E5M2)
    out2, none = CF.bias_activation_backward_fp8(x, None, dy, "gelu", approximate="tanh")
    assert none is None
    r2 = ops.activation_backward(x.double(), dy.double(), kind, params)
    check_quantized(out2, r2, E5M2)
    # a float32 bias with 16-bit data: dbias in float32
    if dtype in (torch.float16, torch.bfloat16):
        _, db32 = CF.bias_activation_backward_fp8(x, b.float(), dy, "gelu", approximate="tanh")
        assert db32.dtype == torch.float32


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_glu_family(dtype):
    x = _x(6, 4, 16, dtype=dtype)
    for fn, plain in [(CF.glu_fp8, CF.glu), (CF.swiglu_fp8, CF.swiglu), (CF.geglu_fp8, CF.geglu),
                      (CF.reglu_fp8, CF.reglu)]:
        for dim in (-1, 1):
            out = fn(x, dim, scale=torch.tensor([10.0]))
            check_quantized(out, plain(x.double(), dim), E4M3, 10.0)
    out = CF.gated_fp8(x, "tanh", 0, "second", E5M2, margin=2)
    check_quantized(out, CF.gated(x.double(), "tanh", 0, "second"), E5M2, margin=2)


def test_float64_and_float32_inputs_of_the_same_values_give_the_same_codes():
    x = _x(500)
    for fn in (lambda t: CF.activation_fp8(t, "mish"),
               lambda t: CF.activation_backward_fp8(t, torch.ones_like(t), "elu"),
               lambda t: CF.swiglu_fp8(t),
               lambda t: CF.softmax_fp8(t.reshape(20, 25), 0, kind="log_softmax")):
        a, b = fn(x), fn(x.double())
        assert torch.equal(a.data.view(torch.uint8), b.data.view(torch.uint8))
        for u, v in zip(a[1:], b[1:]):
            assert torch.equal(u, v)


def test_current_recipe_words():
    x = torch.tensor([0.5, -3.0, math.nan, 2.0])
    out = CF.activation_fp8(x, "identity")
    assert float(out.amax) == 3.0  # NaN excluded
    assert float(out.scale) == _f32(448 / 3)
    assert math.isnan(float(out.data[2].float()))
    out = CF.activation_fp8(x, "identity", E5M2, margin=2, power_of_two=True)
    assert float(out.scale) == 2.0 ** math.floor(math.log2(_f32(57344 / 3) / 4))
    # amax 0 or inf: scale 1
    assert float(CF.activation_fp8(torch.zeros(5), "relu").scale) == 1.0
    out = CF.activation_fp8(torch.tensor([1.0, math.inf]), "relu")
    assert float(out.scale) == 1.0 and float(out.amax) == math.inf
    assert float(out.data[1].float()) == 448.0  # saturated
    # delayed: saturation, and the given scale returned as a copy
    s = torch.tensor(1000.0)
    out = CF.activation_fp8(torch.tensor([100.0, -0.25, 1.0]), "identity", E5M2, scale=s)
    assert out.data.double().tolist() == [fp8_max(E5M2), -256.0, 1024.0]
    assert out.scale.shape == (1,) and float(out.scale) == 1000.0
    out.scale.fill_(3.0)
    assert float(s) == 1000.0


@pytest.mark.parametrize("recipe", [dict(scale=torch.tensor([2.0])), dict()],
                         ids=["delayed", "current"])
def test_empty_inputs(recipe):
    for out in (CF.activation_fp8(torch.empty(0, 3), "gelu", **recipe),
                CF.bias_activation_fp8(torch.empty(0, 3), torch.zeros(3), "gelu", **recipe),
                CF.swiglu_fp8(torch.empty(2, 0), **recipe),
                CF.softmax_fp8(torch.empty(0, 3), **recipe),
                CF.softmax_fp8(torch.empty(3, 0), kind="log_softmax", **recipe),
                CF.bias_activation_backward_fp8(torch.empty(0, 3), torch.zeros(3),
                                                torch.empty(0, 3), **recipe)[0]):
        assert out.data.numel() == 0 and float(out.amax) == 0.0
        scale = 2.0 if recipe else 1.0
        assert float(out.scale) == scale and float(out.scale_inv) == 1 / scale
    _, dbias = CF.bias_activation_backward_fp8(torch.empty(0, 3), torch.ones(3),
                                               torch.empty(0, 3))
    assert torch.equal(dbias, torch.zeros(3))


# ------------------------------------------------------------------ softmax

def check_near_torch(out, r, fmt):
    """out's codes against PyTorch's unfused quantization of r (PyTorch's
    float64 result): (r * scale).clamp(-max, max).to(fmt) (parity.torch_fp8),
    at out's scale; amax = fl32(max |r|), NaN excluded. A code may differ only
    by one step (the neighbouring code, same sign) where r * scale lies
    within 2^-20 relative (plus fp32's smallest subnormal) of the midpoint of
    the two codes: there the last bits of r (cuact's double against
    PyTorch's) and PyTorch's cast through float decide. Returns how many
    codes differ."""
    finite = r[~r.isnan()]
    assert float(out.amax) == _f32(float(finite.abs().max()) if finite.numel() else 0.0)
    scale = float(out.scale)
    v = r.double() * scale
    theirs = torch_fp8(r.double(), scale, fmt)
    ours = out.data.double()
    same = (ours == theirs) | (ours.isnan() & theirs.isnan())
    a = out.data.view(torch.uint8).int()
    b = (v.clamp(-fp8_max(fmt), fp8_max(fmt))).to(fmt).view(torch.uint8).int()
    one_step = ((a - b).abs() == 1) & ((a >> 7) == (b >> 7))
    mid = (ours.abs() + theirs.abs()) / 2
    near = (v.abs() - mid).abs() <= v.abs() * 2.0 ** -20 + 2.0 ** -149
    ok = same | (one_step & near)
    assert bool(ok.all()), (r[~ok][:5], v[~ok][:5], ours[~ok][:5], theirs[~ok][:5])
    return int((~same).sum())


def torch_softmax(x, dim, kind="softmax", softmax_scale=1.0, mask=None):
    """PyTorch's own float64 softmax family of x (any dtype): z = s x + mask
    (softmin: -s x + mask), s the fp32 scale cuact takes."""
    s = _f32(softmax_scale)
    z = x.double() * (-s if kind == "softmin" else s)
    if mask is not None:
        z = z + mask.double()
    return (torch.log_softmax if kind == "log_softmax" else torch.softmax)(z, dim)


SOFTMAX_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


@pytest.mark.parametrize("dtype", SOFTMAX_DTYPES, ids=str)
@pytest.mark.parametrize("fmt,recipe", RECIPES, ids=["e4m3-delayed", "e4m3-current",
                                                     "e5m2-delayed", "e5m2-current-p2"])
@pytest.mark.parametrize("kind", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_codes(dim, kind, fmt, recipe, dtype):
    """dim -1: rows; dim 0 of a 3-D tensor: the middle dimension of
    [1, 6, 5*40]. The codes are cuact's float64 softmax rounded once (bit for
    bit), and PyTorch's float64 softmax with a saturated cast but next to a
    rounding midpoint."""
    x = _x(6, 5, 40, dtype=dtype, seed=4)
    out = CF.softmax_fp8(x, dim, fmt, kind=kind, **recipe)
    assert out.data.shape == x.shape and out.data.is_contiguous()
    plain = CF.log_softmax if kind == "log_softmax" else CF.softmax
    check_quantized(out, plain(x.double(), dim), fmt, *_recipe_args(recipe))
    differ = check_near_torch(out, torch_softmax(x, dim, kind), fmt)
    assert differ <= x.numel() // 1000


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
def test_softmax_options(dtype):
    """softmin and softmax_scale; an additive and a bool mask over [b, h, q, k]
    scores; causal (top-left and bottom-right); fp8 attention's probabilities
    (delayed, scale 448)."""
    x = _x(2, 3, 8, 12, dtype=dtype, seed=5)
    s448 = torch.tensor([448.0])
    out = CF.softmax_fp8(x, -1, kind="softmin", softmax_scale=0.375)
    check_near_torch(out, torch_softmax(x, -1, "softmin", 0.375), E4M3)
    # an additive [q, k] mask shared by batch and heads, with hidden columns
    m = _x(8, 12, dtype=dtype, seed=6)
    m[:, 3] = -math.inf
    out = CF.softmax_fp8(x, -1, softmax_scale=0.5, mask=m, scale=s448)
    check_quantized(out, CF.softmax(x.double(), -1, scale=0.5, mask=m.double()), E4M3, 448.0)
    check_near_torch(out, torch_softmax(x, -1, "softmax", 0.5, m), E4M3)
    assert bool((out.data[..., 3].double() == 0).all())
    # a bool key-padding mask [b, 1, 1, k] (True takes part), log_softmax, e5m2
    keep = torch.ones(2, 1, 1, 12, dtype=torch.bool)
    keep[0, ..., 9:] = False
    out = CF.softmax_fp8(x, -1, E5M2, kind="log_softmax", mask=keep)
    additive = torch.zeros(keep.shape, dtype=torch.float64).masked_fill(~keep, -math.inf)
    r = torch_softmax(x, -1, "log_softmax", 1.0, additive)
    check_quantized(out, r, E5M2)  # -inf at the hidden columns: saturated codes
    assert check_near_torch(out, r, E5M2) <= 1
    # causal: key j > i + offset hidden, for the top-left and bottom-right diagonals
    for offset in (0, 12 - 8):
        hidden = torch.ones(8, 12, dtype=torch.bool).triu(offset + 1)
        additive = torch.zeros(8, 12, dtype=torch.float64).masked_fill(hidden, -math.inf)
        out = CF.softmax_fp8(x, -1, causal=True, causal_offset=offset, scale=s448)
        r = torch_softmax(x, -1, "softmax", 1.0, additive)
        check_quantized(out, r, E4M3, 448.0)
        assert check_near_torch(out, r, E4M3) <= 1
        assert bool((out.data.double()[..., hidden] == 0).all())


def test_softmax_layouts_and_shapes():
    # 2-D rows with a row stride (read in place) and a transposed input: the
    # codes are those of the contiguous input, dense
    wide = _x(7, 64, seed=7)
    for x in (wide[:, :40], wide.t()):
        out = CF.softmax_fp8(x, -1, scale=torch.tensor([100.0]))
        want = CF.softmax_fp8(x.contiguous(), -1, scale=torch.tensor([100.0]))
        assert out.data.is_contiguous()
        assert torch.equal(out.data.view(torch.uint8), want.data.view(torch.uint8))
    # a 0-d input: softmax 1, log_softmax 0
    one = CF.softmax_fp8(torch.tensor(2.5))
    assert one.data.shape == () and float(one.data.float()) == 448.0
    assert float(CF.softmax_fp8(torch.tensor(2.5), kind="log_softmax").amax) == 0.0
    # dim 1 of 3-D and the float16 reference against the float64 path
    x = _x(3, 9, 4, dtype=torch.float16, seed=8)
    out = CF.softmax_fp8(x, 1, E5M2, margin=1)
    check_quantized(out, CF.softmax(x.double(), 1), E5M2, margin=1)


def test_softmax_argument_rules():
    x = _x(4, 6)
    with pytest.raises(ValueError, match="unknown softmax kind"):
        CF.softmax_fp8(x, kind="sparsemax")
    with pytest.raises(RuntimeError, match="unknown softmax kind"):
        ops.softmax_fp8(x, -1, "sparsemax", 1.0, None, 1, 1, 0, 0, E4M3, None, 0, False)
    with pytest.raises(ValueError, match="last dimension only"):
        CF.softmax_fp8(x, 0, causal=True)
    with pytest.raises(IndexError, match="Dimension out of range"):
        CF.softmax_fp8(x, 2)
    with pytest.raises(RuntimeError, match="belong to the current recipe"):
        CF.softmax_fp8(x, scale=torch.ones(1), margin=1)
    with pytest.raises(NotImplementedError, match="unsupported output dtype"):
        CF.softmax_fp8(x, -1, torch.float16)
    with pytest.raises(RuntimeError, match="mask holds"):
        ops.softmax_fp8(x, -1, "softmax", 1.0, torch.zeros(5), 1, 1, 0, 0, E4M3, None, 0, False)


LAYOUTS = {
    "channels_last": lambda t: t.to(memory_format=torch.channels_last),
    "transposed": lambda t: t.transpose(1, 3),
    "sliced": lambda t: t[:, :, ::2],  # not dense: computed on a contiguous copy
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_elementwise_fp8_keeps_a_dense_layout(layout):
    base = _x(2, 3, 4, 6)
    x = LAYOUTS[layout](base)
    dy = LAYOUTS[layout](_x(2, 3, 4, 6, seed=1))
    s = torch.tensor([16.0])
    for ours, want in [
            (CF.activation_fp8(x, "gelu", scale=s), CF.activation_fp8(x.contiguous(), "gelu",
                                                                      scale=s)),
            (CF.activation_backward_fp8(x, dy, "gelu", scale=s),
             CF.activation_backward_fp8(x.contiguous(), dy.contiguous(), "gelu", scale=s))]:
        assert torch.equal(ours.data.double(), want.data.double())
        if layout != "sliced":
            assert ours.data.stride() == x.stride()
    # grad_output in another layout than the input
    a = CF.activation_backward_fp8(x, dy.contiguous(), "silu", scale=s)
    b = CF.activation_backward_fp8(x.contiguous(), dy.contiguous(), "silu", scale=s)
    assert torch.equal(a.data.double(), b.data.double())


def test_dequantize_is_close_to_the_result():
    x = _x(1000)
    out = CF.activation_fp8(x, "gelu")
    # half a step: 2^-4 relative for normal codes, half the subnormal step 2^-9 below
    torch.testing.assert_close(out.dequantize(), F.gelu(x), rtol=2 ** -4,
                               atol=float(out.scale_inv) * 2 ** -10)
    assert out.dequantize(torch.bfloat16).dtype == torch.bfloat16


def test_vmap_gives_each_entry_its_own_scale():
    x = _x(3, 50) * torch.tensor([[1.0], [10.0], [100.0]])
    out = torch.vmap(lambda t: CF.activation_fp8(t, "relu"))(x)
    assert out.scale.shape == (3, 1)
    for i in range(3):
        one = CF.activation_fp8(x[i], "relu")
        assert torch.equal(out.data[i].double(), one.data.double())
        assert torch.equal(out.scale[i], one.scale)
    out = torch.vmap(lambda t: CF.softmax_fp8(t, 0, kind="log_softmax"))(x)
    for i in range(3):
        one = CF.softmax_fp8(x[i], 0, kind="log_softmax")
        assert torch.equal(out.data[i].double(), one.data.double())
        assert torch.equal(out.amax[i], one.amax)


# ------------------------------------------------------------------ no gradient

CALLS = {
    "activation_fp8": lambda x, b: CF.activation_fp8(x, "gelu"),
    "activation_backward_fp8": lambda x, b: CF.activation_backward_fp8(x, x.detach(), "gelu"),
    "bias_activation_fp8": lambda x, b: CF.bias_activation_fp8(x.detach(), b),
    "bias_activation_backward_fp8": lambda x, b: CF.bias_activation_backward_fp8(
        x, b.detach(), x.detach()),
    "glu_fp8": lambda x, b: CF.swiglu_fp8(x),
    "softmax_fp8": lambda x, b: CF.softmax_fp8(x, kind="log_softmax"),
    "softmax_fp8 mask": lambda x, b: CF.softmax_fp8(x.detach(), mask=b),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_an_input_that_requires_grad_is_refused(name):
    """fp8 outputs carry no gradient: a call that would record one raises (a
    result outside the graph would drop that path's gradient silently)."""
    x = _x(4, 6).requires_grad_()
    b = torch.nn.Parameter(_x(6, seed=1))
    with pytest.raises(RuntimeError, match="fp8 outputs carry no gradient"):
        CALLS[name](x, b)
    with torch.no_grad():
        out = CALLS[name](x, b)
    out = out[0] if name == "bias_activation_backward_fp8" else out
    assert not out.data.requires_grad
    out = CALLS[name](x.detach(), b.detach())
    out = out[0] if name == "bias_activation_backward_fp8" else out
    assert not out.data.requires_grad and out.data.grad_fn is None


def test_the_operators_refuse_it_too():
    x = _x(4, 6).requires_grad_()
    kind, params = CF.activation_params("gelu")
    with pytest.raises(RuntimeError, match=r"cuact.activation_fp8\(\): fp8 outputs carry no"):
        ops.activation_fp8(x, kind, params, E4M3, None, 0, False)
    with pytest.raises(RuntimeError, match=r"cuact.glu_fp8\(\): fp8 outputs carry no"):
        ops.glu_fp8(x, kind, params, True, E4M3, None, 0, False)
    with pytest.raises(RuntimeError, match=r"cuact.softmax_fp8\(\): fp8 outputs carry no"):
        ops.softmax_fp8(x, -1, "softmax", 1.0, None, 1, 1, 0, 0, E4M3, None, 0, False)
    scale = torch.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="fp8 outputs carry no gradient"):
        ops.activation_fp8(x.detach(), kind, params, E4M3, scale, 0, False)


def test_forward_mode_is_refused():
    import torch.autograd.forward_ad as fwAD
    x = _x(8)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, torch.ones_like(x))
        with pytest.raises(RuntimeError, match="fp8 outputs carry no gradient"):
            CF.activation_fp8(dual, "gelu")
