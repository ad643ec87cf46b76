"""Parity with torchao's reference quantizers (torchao.prototype.mx_formats,
the version python/requirements-test.txt pins), on the CPU.

MXFP8: cuact's bias_activation_block_fp8 (block 32) against torchao's to_mx,
scale_type "e8m0_floor" against ScaleCalculationMode.FLOOR and "e8m0"
against RCEIL, e4m3 and e5m2 codes. NVFP4: cuact's bias_activation_nvfp4
against torchao's nvfp4_quantize with the same per-tensor scale t =
per_tensor_amax_to_scale(amax) (amax / (448 * 6), the amax of the finite
results). torchao quantizes float32 values: for the identity, the input
(float32, or bfloat16 as float32); for an activation, cuact's own float32
results of it (CF.gelu, CF.silu: its reference, correctly rounded), while
cuact's block-scaled operators quantize the unrounded result.

The data: random rows (normal values times a power of two per row, so the
blocks' scales differ; NVFP4's rows span 2^-16 .. 2^4, so that many blocks
sit far below the tensor's amax), and crafted rows (zero, +-inf, NaN,
subnormal and tiny values, amaxes just above L 2^e, FLOOR's saturation).

Every difference is classified, and each class is counted and the counts
asserted exactly (EXPECTED_MX, EXPECTED_NVFP4; a difference no class
explains fails the test). Each class is checked on the data, not assumed.
First, each library's codes are checked against its own rule from its own
scales (torchao's: its multiply by its scale, clamped, cast; cuact's:
SPEC's), so a code differs only through its block's scale or multiplier.

MX classes (scales counted in blocks, codes in elements):
  nan             a block holding NaN: torchao's amax is NaN (torch.amax
                  propagates it), its scale the E8M0 NaN 0xFF, and its codes
                  x / inf (FLOOR: +-0, NaN for NaN and +-inf) or all NaN
                  (RCEIL); cuact leaves NaN out of the amax (SPEC) and
                  keeps the block's other codes.
  inf_floor       FLOOR, a block holding +-inf: torchao takes the exponent
                  from inf's bit pattern, 128 - emax (2^120 for e4m3, 2^113
                  for e5m2); cuact gives such a block e = 127 (SPEC), so a
                  finite result's code may differ (a huge one beside inf).
  rceil_fp32_log2 RCEIL, amax just above L 2^e (by less than 2^-20 of
                  itself): torchao's float32 descale amax / L and log2 land
                  on the integer e, one below cuact's (the smallest e with
                  amax <= L 2^e, exact); torchao's codes then saturate at L.
  floor_min_scale FLOOR, e = -127 (tiny blocks): torchao clamps its float32
                  scale 2^-127 to 2^-126 (the smallest normal) and divides
                  by it; cuact multiplies by 2^127.
  rceil_zero_byte RCEIL, scale byte 0 (e = -127): torchao multiplies by 1
                  there (its rule for byte 0); cuact by 2^127.
  fp32_results    an activation: torchao rounds the fp32 result, cuact the
                  exact one; they differ where the fp32 result is exactly on
                  a rounding boundary (an fp8 midpoint; FLOOR: amax a power
                  of two; RCEIL: amax = L 2^e).
NVFP4 classes:
  nan             a block holding NaN: torchao's block scale is NaN (e4m3
                  0x7F) and its e2m1 conversion has no NaN ("no special
                  values support"): the block's codes are what torch's CPU
                  kernels make of NaN (2.0's magnitude with AVX2 and
                  AVX-512, others under the default kernels), so every code
                  of such a block is counted, not compared; cuact's scale
                  leaves NaN out and its NaN code is 0x7 (CUDA's, SPEC).
  e4m3_min_normal torchao clamps the block scale to e4m3's smallest normal
                  2^-6 (finfo.tiny); cuact keeps the subnormal e4m3 scales
                  (and 0 for a block whose scale rounds to 0, all-zero ones
                  included), so such a block's codes differ.
  fp32_roundings  the two rules' float32 steps differ: torchao's scale is
                  e4m3(fl32(fl32(amax / 6) / t)), its multiplier
                  fl32(fl32(1 / t) / s); cuact's e4m3(fl32(amax
                  fl32(1 / fl32(6 t)))) and fl32(1 / fl32(s t)) (SPEC); they
                  differ where a value lies within 2^-20 of an e4m3 or e2m1
                  rounding boundary (checked), and an activation's fp32
                  result moves it as much.

The result, torchao 0.18.0 against this package (EXPECTED_MX and
EXPECTED_NVFP4 hold the counts; 1,313,152 codes compared in all):
  MXFP8, the random rows (float32 and bfloat16 inputs, gelu and silu
  results; 16 cases, 1,048,576 codes, 32,768 scales): no difference, in
  both modes and both formats. The crafted rows (16 x 32), each format:
  FLOOR 4 of 16 scales differ (2 nan, 2 inf_floor) and 63 of 512 codes (29
  nan, 1 inf_floor, 33 floor_min_scale); RCEIL 6 scales (2 nan, 4
  rceil_fp32_log2) and 99 codes for e4m3 (31 nan, 35 rceil_fp32_log2, 33
  rceil_zero_byte), 130 for e5m2 (66 rceil_fp32_log2).
  NVFP4 (4,096 blocks of 16 a random case): float32 1,302 scales and
  11,993 codes differ, all e4m3_min_normal; bfloat16 1,301 and 11,991
  e4m3_min_normal, and 19 codes fp32_roundings (bfloat16 values fall on
  e2m1 midpoints); gelu 1,512 and 9,140, silu 1,512 and 9,117, all
  e4m3_min_normal. The crafted rows (12 x 32): 3 scales nan, 8
  e4m3_min_normal (the zero and tiny blocks); 48 codes nan, 6
  fp32_roundings (a block of 1.5 times e2m1's ties with amax 9, the
  tensor's: its multiplier, about 2/3 in both, is a last bit apart and puts
  3 of the ties on either side). Every other block scale (normal e4m3
  numbers) and code is the same.
"""
import math
import types

import pytest
import torch

import cuact.functional as CF
from test_block_scaled import block_amax, round_fp8
from test_nvfp4 import E2M1_VALUES, e2m1_codes, fl32, unpack



@pytest.fixture(scope="module")
def ao():
    """torchao's reference quantizers (imported when the first test of this
    file runs, not when the suite is collected)."""
    try:
        import torchao
        from torchao.prototype.mx_formats import nvfp4_tensor
        from torchao.prototype.mx_formats.config import ScaleCalculationMode
        from torchao.prototype.mx_formats.mx_tensor import to_mx
    except Exception as e:  # not installed, or not importable with this torch
        pytest.skip(f"torchao's reference quantizers cannot be imported here "
                    f"({type(e).__name__}: {e}); python/requirements-test.txt pins the torchao "
                    "this test compares with")
    return types.SimpleNamespace(
        version=torchao.__version__, to_mx=to_mx, nvfp4_quantize=nvfp4_tensor.nvfp4_quantize,
        per_tensor_amax_to_scale=nvfp4_tensor.per_tensor_amax_to_scale,
        modes={"floor": (ScaleCalculationMode.FLOOR, "e8m0_floor"),
               "rceil": (ScaleCalculationMode.RCEIL, "e8m0")})


E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2
LARGEST = {E4M3: 448.0, E5M2: 57344.0}
EMAX = {E4M3: 8, E5M2: 15}
MODES = ("floor", "rceil")  # against scale_type "e8m0_floor" and "e8m0"
CLOSE = 2.0 ** -20  # "within fp32 rounding of a boundary": far above fp32's 2^-24, far below a step


# ------------------------------------------------------------------ data

def _random(rows, cols, dtype, seed, low, high):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=g, dtype=torch.float64) * 3
    power = torch.randint(low, high + 1, (rows, 1), generator=g).double()
    return (x * torch.pow(2.0, power)).to(dtype)


def _crafted():
    """[16, 32] float32: two blocks of 16 (NVFP4), one of 32 (MX) a row."""
    inf, nan = math.inf, math.nan
    up = lambda v: float(torch.nextafter(torch.tensor(v), torch.tensor(inf)))  # noqa: E731
    rows = [
        [0.0] * 32,
        [1.0, -2.0, inf] + [3.0] * 29,
        [-inf, 1e38, -5.0] + [0.25] * 29,
        [nan] * 32,
        [nan, 1.0, -0.0, 0.0] + [-1.5] * 12 + [2.0] * 16,
        [1e-45, -1e-44, 2e-40] + [0.0] * 29,
        [3e-38, -1e-39] + [1e-40] * 30,
        [up(448.0 * 2.0 ** 100)] + [1.0] * 31,            # RCEIL: amax just above L 2^e
        [up(448.0 * 2.0 ** -100)] + [2.0 ** -101] * 31,
        [up(57344.0 * 2.0 ** 90)] + [-3.0] * 31,
        [up(57344.0 * 2.0 ** -90)] + [2.0 ** -95] * 31,
        [1.95 * 512] + [1.0] * 31,                        # FLOOR saturates
        [448.0, -57344.0, 2.0 ** 100, 2.0 ** -100] + [0.5] * 28,
        [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0] * 4,
        [6.0] + [0.03] * 15 + [1e-3] * 16,
        [2.0 ** -20] * 16 + [-(2.0 ** -30)] * 16,
    ]
    return torch.tensor(rows, dtype=torch.float32)


def _crafted_nvfp4():
    """[12, 32] float32 crafted for NVFP4 (the tensor scale from the amax of
    the finite values, 9: a block of amax 9 gets the scale 448, multiplier
    about 2/3): zero, +-inf, NaN, tiny values, e2m1's ties (and 1.5 times
    them), blocks far below the amax."""
    inf, nan = math.inf, math.nan
    ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0]
    rows = [
        [0.0] * 32,
        [1.0, -2.0, inf] + [3.0] * 29,
        [-inf, 5.0, -5.0] + [0.25] * 29,
        [nan] * 32,
        [nan, 1.0, -0.0, 0.0] + [-1.5] * 12 + [2.0] * 16,
        [1e-45, -1e-44, 2e-40] + [0.0] * 29,
        [3e-38, -1e-39] + [1e-40] * 30,
        ties * 2 + [-w for w in ties] * 2,
        [6.0] + [0.03] * 15 + [1e-3] * 16,
        [2.0 ** -20] * 16 + [-(2.0 ** -30)] * 16,
        [w / 2 for w in ties] * 4,
        [w * 1.5 for w in ties] * 2 + [w / 16 for w in ties] * 2,
    ]
    return torch.tensor(rows, dtype=torch.float32)


def _dataset(name, crafted, seeds, identity_span, activation_span):
    """(input, activation, u): u the float32 values torchao quantizes."""
    if name == "crafted":
        x = crafted()
        return x, "identity", x
    if name in ("random-f32", "random-bf16"):
        x = _random(128, 512, torch.float32 if name == "random-f32" else torch.bfloat16, seeds[0],
                    *identity_span)
        return x, "identity", x.float()
    x = _random(128, 512, torch.float32, seeds[1], *activation_span)
    return x, name, getattr(CF, name)(x)


def dataset(name):
    return _dataset(name, _crafted, (1, 2), (-40, 40), (-6, 6))


def nvfp4_dataset(name):
    return _dataset(name, _crafted_nvfp4, (3, 4), (-16, 4), (-16, 4))


DATASETS = ["random-f32", "random-bf16", "gelu", "silu", "crafted"]


def _count(counts, key, n):
    if n:
        counts[key] = counts.get(key, 0) + int(n)


def _same(a, b):
    """fp8 codes equal, or both NaN (whatever their sign and payload)."""
    return (a.view(torch.uint8) == b.view(torch.uint8)) | (a.float().isnan() & b.float().isnan())


def _per_col(t, block, cols):
    return t.repeat_interleave(block, dim=1)[:, :cols]


# ------------------------------------------------------------------ MXFP8

def torchao_mx_codes(u, fmt, mode, byte):
    """torchao's codes from its scale bytes (its rule, in float32): FLOOR
    divides by max(2^(byte - 127), 2^-126) (byte 255: inf), RCEIL multiplies
    by 2^(127 - byte) (byte 0: 1, 254: 2^-127, 255: NaN); clamped to +-L and
    cast."""
    L = LARGEST[fmt]
    b = byte.to(torch.int32)
    if mode == "floor":
        scale = torch.bitwise_left_shift(b, 23).view(torch.float32).clamp(min=2.0 ** -126)
        q = u / _per_col(scale, 32, u.shape[1])
    else:
        rcp = torch.exp2(127.0 - b.float())
        rcp = torch.where(b == 0, 1.0, rcp)
        rcp = torch.where(b == 254, 2.0 ** -127, rcp)
        rcp = torch.where(b == 255, math.nan, rcp)
        q = u * _per_col(rcp, 32, u.shape[1])
    return q.clamp(-L, L).to(fmt)


def mx_parity(ao, name, fmt, mode):
    x, activation, u = dataset(name)
    exact = activation == "identity"
    torchao_mode, scale_type = ao.modes[mode]
    scales_a, codes_a = ao.to_mx(u, fmt, 32, torchao_mode)
    ours = CF.bias_activation_block_fp8(x, activation, dtype=fmt, block=32, scale_type=scale_type)
    byte_a = scales_a.view(torch.uint8).long()
    byte_c = ours.scales.view(torch.uint8).long()
    codes_c = ours.data
    rows, cols = u.shape
    L, emax = LARGEST[fmt], EMAX[fmt]
    v = u.double()
    assert bool(_same(codes_a, torchao_mx_codes(u, fmt, mode, byte_a)).all()), \
        "torchao's codes do not follow from its scales by its rule"
    if exact:  # cuact's rule (SPEC; test_block_scaled.py checks it everywhere)
        want = round_fp8(torch.ldexp(v, -_per_col(byte_c - 127, 32, cols)), fmt)
        assert bool(_same(codes_c, want).all())

    nan = v.isnan().reshape(rows, -1, 32).any(-1)
    inf = v.isinf().reshape(rows, -1, 32).any(-1)
    amax = block_amax(v, 32)
    e_a = byte_a - 127
    counts = {}
    scale_reason = torch.full_like(byte_a, -1)  # index into REASONS, -1: the same scale
    reasons = ["nan", "inf_floor", "rceil_fp32_log2", "fp32_results"]
    differs = byte_a != byte_c
    explained = torch.zeros_like(differs)

    def explain(i, where):
        nonlocal explained
        where = where & differs & ~explained
        scale_reason[where] = i
        explained |= where
        _count(counts, "scales: " + reasons[i], where.sum())

    explain(0, nan & (byte_a == 255))
    if mode == "floor":
        explain(1, inf & (byte_a == 128 - emax + 127))
    if not exact:  # the fp32 result on the boundary, the exact one past it
        if mode == "floor":
            explain(3, (byte_a == byte_c + 1) & (amax == torch.ldexp(torch.ones_like(amax),
                                                                     e_a + emax)))
        else:
            explain(3, (byte_a == byte_c - 1) & (amax == torch.ldexp(torch.full_like(amax, L),
                                                                     e_a)))
    if mode == "rceil":
        bound = torch.ldexp(torch.full_like(amax, L), e_a)
        explain(2, (byte_a == byte_c - 1) & (amax > bound) & (amax <= bound * (1 + CLOSE)))
    bad = differs & ~explained
    assert not bool(bad.any()), (
        f"unexplained scales at {bad.nonzero()[:5].tolist()}: torchao "
        f"{byte_a[bad][:5].tolist()}, cuact {byte_c[bad][:5].tolist()}")

    # codes
    code_differs = ~_same(codes_a, codes_c)
    by_scale = _per_col(scale_reason, 32, cols)
    for i, r in enumerate(reasons):
        _count(counts, "codes: " + r, (code_differs & (by_scale == i)).sum())
    same_scale = code_differs & (by_scale == -1)
    b = _per_col(byte_a, 32, cols)
    multiplier = "floor_min_scale" if mode == "floor" else "rceil_zero_byte"
    other_multiplier = same_scale & (b == 0)
    _count(counts, "codes: " + multiplier, other_multiplier.sum())
    rest = same_scale & ~other_multiplier
    if not exact and bool(rest.any()):  # u 2^-e exactly the midpoint of the two codes
        scaled = torch.ldexp(v, -(b - 127))
        midpoint = (codes_a.double() + codes_c.double()) / 2
        on_it = rest & (scaled == midpoint)
        _count(counts, "codes: fp32_results", on_it.sum())
        rest &= ~on_it
    assert not bool(rest.any()), (
        f"{int(rest.sum())} unexplained codes at {rest.nonzero()[:5].tolist()}: u "
        f"{v[rest][:5].tolist()}, torchao {codes_a[rest][:5].float().tolist()}, cuact "
        f"{codes_c[rest][:5].float().tolist()}")
    _count(counts, "compared codes", rows * cols)
    return counts


# Per (data, format, mode): the classes' counts (and the codes compared). The
# random rows (float32, bfloat16, gelu, silu): no difference in any mode or format.
EXPECTED_MX = {(d, f, m): {"compared codes": 65536} for d in DATASETS[:4]
               for f in ("e4m3", "e5m2") for m in MODES}
EXPECTED_MX.update({
    ("crafted", "e4m3", "floor"): {"scales: nan": 2, "scales: inf_floor": 2, "codes: nan": 29,
                                   "codes: inf_floor": 1, "codes: floor_min_scale": 33,
                                   "compared codes": 512},
    ("crafted", "e5m2", "floor"): {"scales: nan": 2, "scales: inf_floor": 2, "codes: nan": 29,
                                   "codes: inf_floor": 1, "codes: floor_min_scale": 33,
                                   "compared codes": 512},
    ("crafted", "e4m3", "rceil"): {"scales: nan": 2, "scales: rceil_fp32_log2": 4,
                                   "codes: nan": 31, "codes: rceil_fp32_log2": 35,
                                   "codes: rceil_zero_byte": 33, "compared codes": 512},
    ("crafted", "e5m2", "rceil"): {"scales: nan": 2, "scales: rceil_fp32_log2": 4,
                                   "codes: nan": 31, "codes: rceil_fp32_log2": 66,
                                   "codes: rceil_zero_byte": 33, "compared codes": 512},
})

MX_CASES = [(d, f, m) for d in DATASETS for f in ("e4m3", "e5m2") for m in MODES]


@pytest.mark.parametrize("data,fmt,mode", MX_CASES, ids=["-".join(c) for c in MX_CASES])
def test_mxfp8_parity(ao, data, fmt, mode):
    counts = mx_parity(ao, data, {"e4m3": E4M3, "e5m2": E5M2}[fmt], mode)
    assert counts == EXPECTED_MX[(data, fmt, mode)], counts


# ------------------------------------------------------------------ NVFP4

def _e2m1_values(codes):
    values = torch.tensor(E2M1_VALUES, dtype=torch.float64)
    return torch.where(codes & 8 != 0, -1.0, 1.0) * values[codes & 7]


def _near_midpoint(a, b, *values):
    """Codes a and b are adjacent (in value, e2m1 or e4m3 given as float64) and
    each of values lies within CLOSE of the midpoint between them."""
    m = (a + b) / 2
    ok = torch.ones_like(m, dtype=torch.bool)
    for w in values:
        ok &= (w - m).abs() <= CLOSE * m.abs()
    return ok


def nvfp4_parity(ao, name):
    x, activation, u = nvfp4_dataset(name)
    exact = activation == "identity"
    rows, cols = u.shape
    finite = u[u.isfinite()]
    t32 = ao.per_tensor_amax_to_scale(finite.abs().max())  # float32 0-d
    scales_a, packed_a = ao.nvfp4_quantize(u, 16, t32)
    ours = CF.bias_activation_nvfp4(x, activation, tensor_scale=t32.reshape(1))
    s_a, s_c = scales_a.double(), ours.scales.double()  # [rows, groups] values
    codes_a = unpack(packed_a.view(torch.float4_e2m1fn_x2), rows, cols)
    codes_c = unpack(ours.data, rows, cols)
    v = u.double()
    t = float(t32)
    nan = v.isnan().reshape(rows, -1, 16).any(-1)
    nan_e = _per_col(nan, 16, cols)

    # torchao's codes from its scales (its rule: x * (1 / t) / s in float32,
    # clamped to +-6, rounded to nearest even); cuact's from its own (SPEC)
    rcp_a = (1.0 / t32) / scales_a.float()  # float32, as torchao forms it
    want_a = e2m1_codes(((u * _per_col(rcp_a, 16, cols)).clamp(-6.0, 6.0)).double())
    assert bool((codes_a == want_a)[~nan_e].all()), "torchao's codes do not follow its scales"
    # (torchao's codes in a NaN block depend on the CPU kernels torch runs:
    # 2.0's code with AVX2 and AVX-512, others under the default kernels;
    # they are counted, not compared)
    m_c = torch.where(s_c > 0, fl32(1.0 / fl32(s_c * t)), torch.zeros_like(s_c))
    if exact:
        assert bool((codes_c == e2m1_codes(fl32(v * _per_col(m_c, 16, cols)))).all())

    counts = {}
    differs = scales_a.view(torch.uint8) != ours.scales.view(torch.uint8)
    reason = torch.full(differs.shape, -1, dtype=torch.long)
    reasons = ["nan", "e4m3_min_normal", "fp32_roundings"]
    amax = block_amax(v, 16)
    k = fl32(1.0 / fl32(torch.tensor(6.0 * t, dtype=torch.float64)))
    x_c = fl32(amax * k)                    # cuact's fp32 scale before e4m3
    x_a = fl32(fl32(amax / 6.0) / t)        # torchao's
    conditions = [nan & s_a.isnan(),
                  (s_a == 2.0 ** -6) & (s_c < 2.0 ** -6),
                  _near_midpoint(s_a, s_c, x_a, x_c)]
    for i, cond in enumerate(conditions):
        where = differs & (reason == -1) & cond
        reason[where] = i
        _count(counts, "scales: " + reasons[i], where.sum())
    bad = differs & (reason == -1)
    assert not bool(bad.any()), (
        f"unexplained scales at {bad.nonzero()[:5].tolist()}: torchao {s_a[bad][:5].tolist()}, "
        f"cuact {s_c[bad][:5].tolist()}")

    code_differs = codes_a != codes_c
    by_scale = _per_col(reason, 16, cols)
    _count(counts, "codes: nan", nan_e.sum())  # every code of a NaN block (above)
    for i, r in enumerate(reasons[1:], 1):
        _count(counts, "codes: " + r, (code_differs & ~nan_e & (by_scale == i)).sum())
    rest = code_differs & ~nan_e & (by_scale == -1)
    va, vc = _e2m1_values(codes_a).abs(), _e2m1_values(codes_c).abs()
    scaled_a = (v * _per_col(rcp_a.double(), 16, cols)).abs()
    scaled_c = (v * _per_col(m_c, 16, cols)).abs()
    on_it = rest & _near_midpoint(va, vc, scaled_a, scaled_c) & \
        ((codes_a & 8) == (codes_c & 8)) & ((codes_a & 7) - (codes_c & 7)).abs().eq(1)
    _count(counts, "codes: fp32_roundings", on_it.sum())
    rest &= ~on_it
    assert not bool(rest.any()), (
        f"{int(rest.sum())} unexplained codes at {rest.nonzero()[:5].tolist()}: u "
        f"{v[rest][:5].tolist()}, torchao {codes_a[rest][:5].tolist()}, cuact "
        f"{codes_c[rest][:5].tolist()}")
    _count(counts, "compared codes", rows * cols)
    return counts


EXPECTED_NVFP4 = {
    "random-f32": {"scales: e4m3_min_normal": 1302, "codes: e4m3_min_normal": 11993,
                   "compared codes": 65536},
    "random-bf16": {"scales: e4m3_min_normal": 1301, "codes: e4m3_min_normal": 11991,
                    "codes: fp32_roundings": 19, "compared codes": 65536},
    "gelu": {"scales: e4m3_min_normal": 1512, "codes: e4m3_min_normal": 9140,
             "compared codes": 65536},
    "silu": {"scales: e4m3_min_normal": 1512, "codes: e4m3_min_normal": 9117,
             "compared codes": 65536},
    "crafted": {"scales: nan": 3, "scales: e4m3_min_normal": 8, "codes: nan": 48,
                "codes: fp32_roundings": 6, "compared codes": 384},
}


@pytest.mark.parametrize("data", DATASETS)
def test_nvfp4_parity(ao, data):
    counts = nvfp4_parity(ao, data)
    assert counts == EXPECTED_NVFP4[data], counts


def test_torchao_version(ao):
    """The counts above are torchao 0.18.0's (python/requirements-test.txt)."""
    assert ao.version.split("+")[0] == "0.18.0"
