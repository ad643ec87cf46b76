"""NVFP4 outputs (bias_activation_nvfp4, glu_nvfp4, nvfp4; the block-scaled
operators with scale_type "e4m3") on the CPU, against an independent
reference written here from docs/SPEC.md, "Block-scaled outputs" (e4m3):
the activation in float64 with torch (as test_block_scaled.py computes it),
then per block of 16 results of a row amax over the non-NaN results; with
the tensor scale t (1 where it is not a positive finite number) and
k = fl32(1 / fl32(6 t)) the block's scale is the e4m3 value of
fl32(amax k) (saturated), the multiplier m = fl32(1 / fl32(s t)) (0 where
s is 0), each code the e2m1 value nearest fl32(r m) (ties to the even code,
saturated at 6, the sign of zero kept, NaN the code 0x7), packed two a byte,
the first in the low nibble; the scales placed by the layouts' definitions.

Codes and scales are compared bit for bit; torch's inexact float64
activations (gelu, silu) get test_block_scaled.py's allowance: a difference
is accepted only where the same rule applied to the result moved by 2^-46 of
itself gives the operator's bits. Exact activations get none.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF
from test_block_scaled import ACTIVATIONS, DELTA, PACKED, _bits, _preactivation, _rows, \
    block_amax, packed_strides, scales_explained, scales_shape, unpack_words, unplace
from test_block_scaled import LAYOUTS as FP8_LAYOUTS

ops = torch.ops.cuact
F4 = torch.float4_e2m1fn_x2
E4M3 = torch.float8_e4m3fn
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Between e2m1 codes c and c + 1 (magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6): the
# midpoint, and whether a tie goes up (to the even code c + 1, c odd).
E2M1_MIDPOINTS = [(0.25, False), (0.75, True), (1.25, False), (1.75, True), (2.5, False),
                  (3.5, True), (5.0, False)]
E2M1_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
# every layout: e4m3 scales are 1-byte, so the packed one holds them too
LAYOUTS = FP8_LAYOUTS + [PACKED]


# ------------------------------------------------------------------ the reference

def fl32(v):
    """v (float64) rounded to fp32, as float64."""
    return v.float().double()


def e2m1_codes(y):
    """The 4-bit codes (int64) of y (float64): the nearest e2m1 magnitude, ties
    to the even code, saturated at 6; sign 0x8 as y's (zero's too); NaN 0x7."""
    a = y.abs()
    code = torch.zeros(y.shape, dtype=torch.int64)
    for mid, tie_up in E2M1_MIDPOINTS:
        code += (a >= mid if tie_up else a > mid).long()
    code |= torch.signbit(y).long() * 8
    return torch.where(y.isnan(), 7, code)


def e2m1_value(codes):
    """The values (float64) of 4-bit codes."""
    values = torch.tensor(E2M1_VALUES, dtype=torch.float64)
    return torch.where(codes & 8 != 0, -1.0, 1.0) * values[codes & 7]


def unpack(data, rows, cols):
    """The operator's float4_e2m1fn_x2 codes as [rows, cols] 4-bit codes (int64)."""
    assert data.dtype == F4 and data.numel() * 2 == rows * cols
    b = data.view(torch.uint8).reshape(rows, cols // 2).long()
    return torch.stack([b & 0xF, b >> 4], dim=-1).reshape(rows, cols)


def effective_tensor_scale(t):
    """The tensor scale cuact uses: t, or 1 where t is not a positive finite number."""
    t = float(t.reshape(()))
    return t if t > 0 and math.isfinite(t) else 1.0


def nvfp4_scales(amax, t):
    """The e4m3 scale (float8_e4m3fn) of blocks of amax (float64) for the tensor scale t."""
    k = fl32(torch.tensor(1.0, dtype=torch.float64) / fl32(torch.tensor(6.0 * t)))
    return fl32(amax * k).clamp(-448.0, 448.0).to(E4M3)


def nvfp4_multiplier(scales, t):
    """fl32(1 / fl32(s t)) per block, 0 where s is 0 (float64)."""
    s = scales.double()
    return torch.where(s > 0, fl32(1.0 / fl32(s * t)), torch.zeros_like(s))


def check_nvfp4(out, v, t, layout, exact):
    """out (the operator's (codes, scales, amax)) against the reference for the
    [rows, cols] result v (float64) and the tensor scale t (a tensor).
    exact=False: torch's v is within a few ulps of the exact result; a
    difference must be explained by moving v by DELTA of itself. Returns the
    number of explained differences."""
    codes, scales, amax = out[:3]
    rows, cols = v.shape
    groups = -(-cols // 16)
    assert codes.dtype == F4 and codes.shape[-1] * 2 == cols and codes.numel() * 2 == rows * cols
    assert scales.dtype == (torch.int32 if layout == PACKED else E4M3)
    assert amax.dtype == torch.float32 and amax.shape == ()
    t = effective_tensor_scale(t)
    moved = [v] if exact else [v, v * (1 - DELTA), v * (1 + DELTA)]
    explained = 0

    finite = [torch.where(m.isnan(), torch.zeros_like(m), m.abs()) for m in moved]
    want = [float(f.max().float()) if f.numel() else 0.0 for f in finite]
    assert float(amax) in want, (float(amax), want)

    got = unplace(scales, layout, rows, groups, entry=E4M3)  # [rows, groups] e4m3
    options = [nvfp4_scales(block_amax(m, 16), t) for m in moved]
    explained += scales_explained(got, options)[0]

    # the codes, with the operator's scales (the ones checked above)
    m = nvfp4_multiplier(got, t).repeat_interleave(16, dim=1)[:, :cols]
    got_codes = unpack(codes, rows, cols)
    first = got_codes == e2m1_codes(fl32(v * m))
    ok = first.clone()
    for w in moved[1:]:
        ok |= got_codes == e2m1_codes(fl32(w * m))
    explained += int((ok & ~first).sum())
    bad = ~ok
    assert not bool(bad.any()), (
        f"{int(bad.sum())} unexplained codes at {bad.nonzero()[:5].tolist()}: v "
        f"{v[bad][:5].tolist()}, got {got_codes[bad][:5].tolist()}, want "
        f"{e2m1_codes(fl32(v * m))[bad][:5].tolist()}")
    return explained


def per_tensor_scale(v):
    """amax / (448 * 6) in float32 of the results v (float64), NaN excluded."""
    a = torch.where(v.isnan(), torch.zeros_like(v), v.abs())
    return (a.max().float() if a.numel() else torch.tensor(0.0)).reshape(1) / 2688.0


def _data(*shape, dtype=torch.float32, seed=0, span=4):
    """Normal values times a power of two per row (2^-span .. 2^span), so the
    blocks' e4m3 scales differ."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    power = torch.randint(-span, span + 1, (*shape[:-1], 1), generator=g).double()
    return (x * torch.pow(2.0, power)).to(dtype)


# ------------------------------------------------------------------ bias + activation

CASES = [(dt, layout) for dt in DTYPES for layout in LAYOUTS]


@pytest.mark.parametrize("dtype,layout", CASES,
                         ids=[f"{str(c[0])[6:]}-{c[1]}" for c in CASES])
def test_bias_activation_matches_the_reference(dtype, layout):
    """[2, 3, 70]: 6 rows, a partial last block (70 = 4 x 16 + 6); each
    activation with a bias (the input's dtype or float32) and without; the
    tensor scale amax / (448 * 6), and a given one that saturates scales."""
    x = _data(2, 3, 70, dtype=dtype)
    for i, (name, (fn, exact)) in enumerate(ACTIVATIONS.items()):
        bias_dtype = torch.float32 if dtype != torch.float32 and i % 2 else dtype
        for bias in (_data(70, dtype=bias_dtype, seed=1), None):
            v = _rows(fn(_preactivation(x, bias)))
            for t in (per_tensor_scale(v), torch.tensor([2.0 ** -9])):
                out = CF.bias_activation_nvfp4(
                    x, name.replace("_tanh", ""), bias, tensor_scale=t, scale_layout=layout,
                    **({"approximate": "tanh"} if "tanh" in name else {}))
                assert isinstance(out, CF.BlockScaledFloat4) and out.tensor_scale is t
                assert out.data.shape == (2, 3, 35)
                check_nvfp4(out, v, t, layout, exact)


def test_special_blocks_and_tensor_scales():
    """An all-zero block (scale 0, codes +-0), a block holding +-inf (scale
    448, the infinity saturates to 6, the finite values keep their codes),
    NaN (code 0x7, no part in the scale), +-0 and values that round to
    zero (their sign kept), tiny values (subnormal e4m3 scales, or 0), the
    ties of e2m1 (to the even code), saturation; tensor scales that are not
    positive finite numbers act as 1."""
    inf, nan = math.inf, math.nan
    ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0,
            6.0, -6.0]
    rows = [
        [0.0] * 16,
        [1.0, -2.0, inf] + [3.0] * 13,
        [-inf, 1e30, -5.0] + [0.25] * 13,
        [nan] * 16,
        [nan, 1.0, -0.0, 0.0, -1e-3, 1e-3] + [-1.5] * 10,
        [1e-45, -1e-44, 2e-40] + [0.0] * 13,
        ties,
        [3.4028234663852886e38, -1.0] + [2.0] * 14,
    ]
    x = torch.tensor(rows, dtype=torch.float32)
    v = x.double()
    for t in (torch.tensor([1.0]), torch.tensor([6.0 / 6.0 / 448.0]), torch.tensor([1e-3]),
              torch.tensor([0.0]), torch.tensor([-2.0]), torch.tensor([inf]),
              torch.tensor([nan]), torch.tensor([1e-30])):
        for layout in LAYOUTS:
            out = CF.bias_activation_nvfp4(x, "identity", tensor_scale=t, scale_layout=layout)
            check_nvfp4(out, v, t, layout, True)
    # the pieces SPEC names, with t = 1 / 6 (k = 1: the scale is the e4m3 of amax)
    out = CF.bias_activation_nvfp4(x, "identity", tensor_scale=1 / 6)
    s = out.scales.float()[:, 0]
    codes = unpack(out.data, 8, 16)
    assert float(s[0]) == 0.0 and bool((codes[0] == 0).all())
    assert float(s[1]) == 448.0 and int(codes[1, 2]) == 0x7
    assert int(codes[2, 0]) == 0xF and int(codes[3, 0]) == 0x7 and int(codes[4, 0]) == 0x7
    assert int(codes[4, 2]) == 0x8 and int(codes[4, 3]) == 0
    assert float(out.amax) == inf
    # ties with a scale of 1 (amax 6, t = 1 / 6): the even code
    assert float(s[6]) == 6.0
    assert e2m1_value(codes[6]).tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, -0.0, -1.0, -1.0,
                                             -2.0, -2.0, -4.0, -4.0, 6.0, -6.0]


def test_nvfp4_finds_the_tensor_scale():
    """tensor_scale=None: t = amax / (448 * 6) of the call's results in
    float32; the same bits as the call given that t, in every layout."""
    x = _data(4, 96, dtype=torch.bfloat16, seed=7)
    bias = _data(96, seed=8)
    v = _rows(F.gelu(_preactivation(x, bias)))
    for layout in LAYOUTS:
        got = CF.nvfp4(x, "gelu", bias, scale_layout=layout)
        t = got.amax.reshape(1) / 2688.0  # (a normal amax: no clamp, not 0 or inf)
        assert torch.equal(got.tensor_scale, t)
        want = CF.bias_activation_nvfp4(x, "gelu", bias, tensor_scale=t, scale_layout=layout)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and torch.equal(_bits(g), _bits(w))
        check_nvfp4(got, v, t, layout, False)
    plain = CF.nvfp4(x)  # identity
    check_nvfp4(plain, _rows(x.double()), per_tensor_scale(x.double()), "row_major", True)
    assert torch.equal(plain.tensor_scale, per_tensor_scale(x.double()))
    # the library's found scale: all zero or infinite gives t = 1; a tiny amax 2^-126
    zero = CF.nvfp4(torch.zeros(2, 32))
    assert float(zero.tensor_scale) == 1.0 and bool((zero.data.view(torch.uint8) == 0).all())
    assert float(CF.nvfp4(torch.tensor([[math.inf] + [1.0] * 15])).tensor_scale) == 1.0
    assert float(CF.nvfp4(torch.full((1, 16), 1e-38)).tensor_scale) == 2.0 ** -126


def test_packed_words_hold_the_row_major_bytes():
    """column_major_packed: int32 [rows, ceil(groups / 4)], strides (1, R4),
    its words unpacked the row_major call's e4m3 scales bit for bit, the
    codes and amax that call's (rows 1, 3, 6, 130; groups 1 .. 9)."""
    t = torch.tensor([0.01])
    for rows, cols in [(1, 16), (3, 100), (6, 144), (130, 96)]:
        x = _data(rows, cols, dtype=torch.bfloat16, seed=rows)
        for call in (lambda **k: CF.bias_activation_nvfp4(x, "silu", tensor_scale=t, **k),
                     lambda **k: CF.glu_nvfp4(x, "geglu", tensor_scale=t, **k)):
            packed, plain = call(scale_layout=PACKED), call()
            assert packed.scales.stride() == packed_strides(rows)
            got = unpack_words(packed.scales, rows, plain.scales.shape[1])
            assert torch.equal(got, plain.scales.view(torch.uint8))
            assert torch.equal(_bits(packed.data), _bits(plain.data))
            assert torch.equal(packed.amax, plain.amax)


# ------------------------------------------------------------------ GLU

GLU_TORCH = {"swiglu": (lambda a, b: F.silu(a) * b, False),
             "geglu": (lambda a, b: F.gelu(a) * b, False),
             "reglu": (lambda a, b: F.relu(a) * b, True),
             "glu": (lambda a, b: a * torch.sigmoid(b), False)}


@pytest.mark.parametrize("dtype", DTYPES, ids=[str(d)[6:] for d in DTYPES])
def test_glu_matches_the_reference(dtype):
    """x [4, 2, 2 x 46]: d = 46 (a partial last block), every GLU form and layout."""
    x = _data(4, 2, 92, dtype=dtype, seed=5)
    a, b = x.double().chunk(2, dim=-1)
    for i, (glu, (fn, exact)) in enumerate(GLU_TORCH.items()):
        v = _rows(fn(a, b))
        layout = LAYOUTS[i % len(LAYOUTS)]
        t = per_tensor_scale(v)
        out = CF.glu_nvfp4(x, glu, tensor_scale=t, scale_layout=layout)
        assert out.data.shape == (4, 2, 23)
        check_nvfp4(out, v, t, layout, exact)
    # the parameters reach the activation; the operator's gate_first picks the half
    out = CF.glu_nvfp4(x, "swiglu", tensor_scale=0.01, beta=1.5)
    check_nvfp4(out, _rows(a * torch.sigmoid(a * 1.5) * b), out.tensor_scale, "row_major", False)
    second = ops.glu_block_fp8(x, *CF.activation_params("relu"), False, F4, 16, "e4m3",
                               "row_major", torch.tensor([0.01]))
    check_nvfp4(second, _rows(a * F.relu(b)), torch.tensor(0.01), "row_major", True)


# ------------------------------------------------------------------ shapes, vmap, compile

def test_shapes_and_empty_inputs():
    for shape in [(0, 64), (3, 0), (2, 0, 40), (40,)]:
        x = torch.ones(shape)
        rows, cols = math.prod(shape[:-1]), shape[-1]
        for layout in LAYOUTS:
            out = CF.bias_activation_nvfp4(x, "relu", tensor_scale=1.0, scale_layout=layout)
            assert out.data.shape == (*shape[:-1], cols // 2) and out.data.dtype == F4
            assert tuple(out.scales.shape) == scales_shape(layout, rows, -(-cols // 16))
            if layout == PACKED:
                assert out.scales.stride() == packed_strides(rows)
            assert float(out.amax) == (1.0 if x.numel() else 0.0)
    out = CF.glu_nvfp4(torch.ones(5, 0), tensor_scale=1.0)
    assert out.data.shape == (5, 0) and out.scales.shape == (5, 0)


def test_non_contiguous_input():
    x = _data(64, 6, seed=9).t()  # [6, 64], a transpose
    t = torch.tensor([0.003])
    out = CF.bias_activation_nvfp4(x, "silu", tensor_scale=t)
    check_nvfp4(out, F.silu(x.double()), t, "row_major", False)


def test_vmap_runs_one_call_per_entry():
    """Each batch entry is its own call; a batched tensor scale gives each its own."""
    x = _data(3, 4, 40, seed=10)
    args = (*CF.activation_params("gelu"), None, F4, 16, "e4m3", "swizzled_128x4")
    ts = torch.tensor([[0.01], [0.002], [1.0]])
    batched = torch.vmap(lambda a, t: ops.bias_activation_block_fp8(a, *args, t))(x, ts)
    shared = torch.vmap(lambda a: ops.bias_activation_block_fp8(a, *args, ts[0]))(x)
    for i in range(3):
        one = ops.bias_activation_block_fp8(x[i], *args, ts[i])
        first = ops.bias_activation_block_fp8(x[i], *args, ts[0])
        for b, s, o, f in zip(batched, shared, one, first):
            assert torch.equal(_bits(b[i]), _bits(o)) and torch.equal(_bits(s[i]), _bits(f))


def test_compiled_matches_eager():
    """torch.compile(fullgraph=True) of a function calling the NVFP4
    functions (the found tensor scale too): the same bits as eager."""
    def step(x, bias, h, t):
        y = CF.nvfp4(x, "gelu", bias)
        z = CF.bias_activation_nvfp4(x, "silu", tensor_scale=t, scale_layout="column_major")
        w = CF.glu_nvfp4(h, "swiglu", tensor_scale=t, scale_layout="swizzled_128x4")
        p = CF.nvfp4(h, "relu", scale_layout=PACKED)
        return y, z, w, p

    torch._dynamo.reset()
    x, bias, h = _data(6, 40, dtype=torch.bfloat16, seed=11), _data(40, seed=12).bfloat16(), \
        _data(2, 3, 64, seed=13)
    t = torch.tensor([0.004])
    compiled = torch.compile(step, fullgraph=True)
    for got, want in zip(compiled(x, bias, h, t), step(x, bias, h, t)):
        assert type(got) is CF.BlockScaledFloat4
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape and g.stride() == w.stride()
            assert torch.equal(_bits(g), _bits(w))


# ------------------------------------------------------------------ CUDA (skips without a GPU)

def test_cuda_kernels_quantize_their_fp32_results(cuda):
    """On CUDA the codes and scales are a function of the fp32 results alone
    (SPEC): the reference here applied to the plain operators' float32
    results gives the kernels' bits, in every layout; the tensor scale is
    read from device memory."""
    x = _data(130, 72, seed=14)
    bias = _data(72, seed=15)
    h = _data(130, 2 * 40, seed=16)
    for layout in LAYOUTS:
        r = CF.bias_activation(x.to(cuda), bias.to(cuda), "gelu").double().cpu()
        for t in (per_tensor_scale(r), torch.tensor([1e-3])):
            out = CF.bias_activation_nvfp4(x.to(cuda), "gelu", bias.to(cuda),
                                           tensor_scale=t.to(cuda), scale_layout=layout)
            check_nvfp4([o.cpu() for o in out[:3]], r, t, layout, True)
        r = CF.swiglu(h.to(cuda)).double().cpu()
        found = CF.nvfp4(h.to(cuda)[:, :40], "identity", scale_layout=layout)
        check_nvfp4([o.cpu() for o in found[:3]], h[:, :40].double(), found.tensor_scale.cpu(),
                    layout, True)
        t = per_tensor_scale(r)
        out = CF.glu_nvfp4(h.to(cuda), "swiglu", tensor_scale=t.to(cuda), scale_layout=layout)
        check_nvfp4([o.cpu() for o in out[:3]], r, t, layout, True)


# ------------------------------------------------------------------ refusals

def test_bad_arguments():
    x = torch.ones(2, 32)
    t = torch.tensor([0.5])
    gelu = CF.activation_params("gelu")
    with pytest.raises(ValueError, match="last dimension must be even, got 31"):
        CF.bias_activation_nvfp4(torch.ones(2, 31), "gelu", tensor_scale=t)
    with pytest.raises(ValueError, match="must be even, got 1"):
        CF.nvfp4(torch.tensor(1.0))
    with pytest.raises(ValueError, match="last dimension must be even, got 15"):
        CF.glu_nvfp4(torch.ones(2, 30), tensor_scale=t)
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        CF.glu_nvfp4(torch.ones(2, 31), tensor_scale=t)
    with pytest.raises(ValueError, match="unknown scale_layout"):
        CF.nvfp4(x, scale_layout="swizzled")
    with pytest.raises(ValueError, match="unknown glu"):
        CF.glu_nvfp4(x, "gelu", tensor_scale=t)
    with pytest.raises(TypeError, match="tensor_scale"):
        CF.bias_activation_nvfp4(x, "gelu")  # required
    with pytest.raises(TypeError, match="tensor_scale must be a float32 Tensor"):
        CF.bias_activation_nvfp4(x, "gelu", tensor_scale="1")
    with pytest.raises(TypeError, match="tensor_scale is .*; it must be float32"):
        CF.bias_activation_nvfp4(x, "gelu", tensor_scale=t.double())
    with pytest.raises(RuntimeError, match="tensor_scale must hold one element"):
        CF.glu_nvfp4(x, tensor_scale=torch.ones(2))
    with pytest.raises(NotImplementedError, match="float64 inputs are not supported"):
        CF.nvfp4(x.double())
    with pytest.raises(RuntimeError, match="carry no gradient"):
        CF.nvfp4(x.clone().requires_grad_())
    with pytest.raises(RuntimeError, match="carry no gradient"):
        CF.bias_activation_nvfp4(x, "gelu", tensor_scale=t.clone().requires_grad_())
    # the operators' own checks: the dtype and tensor_scale go with scale_type e4m3,
    # and cuact's Status says which block NVFP4 takes
    t = torch.tensor([0.5])
    with pytest.raises(RuntimeError, match="writes float4_e2m1fn_x2 codes"):
        ops.bias_activation_block_fp8(x, *gelu, None, E4M3, 16, "e4m3", "row_major", t)
    with pytest.raises(RuntimeError, match="take scale_type e4m3"):
        ops.bias_activation_block_fp8(x, *gelu, None, F4, 16, "e8m0", "row_major")
    with pytest.raises(RuntimeError, match="needs tensor_scale"):
        ops.glu_block_fp8(x, *gelu, True, F4, 16, "e4m3", "row_major")
    with pytest.raises(RuntimeError, match="tensor_scale belongs to scale_type e4m3"):
        ops.glu_block_fp8(x, *gelu, True, E4M3, 16, "e8m0", "row_major", t)
    with pytest.raises(RuntimeError, match="NVFP4 .* takes blocks of 16"):
        ops.bias_activation_block_fp8(x, *gelu, None, F4, 32, "e4m3", "row_major", t)
    with pytest.raises(RuntimeError, match="cols must be even"):
        ops.bias_activation_block_fp8(torch.ones(2, 5), *gelu, None, F4, 16, "e4m3", "row_major",
                                      t)
