"""Block-scaled fp8 outputs (bias_activation_block_fp8, glu_block_fp8, mxfp8
and their operators) on the CPU, against an independent reference written
here from docs/SPEC.md, "Block-scaled outputs": the activation in float64
with torch (the pre-activation x + bias rounded to fp32, as cuact forms it),
then per block of a row amax over the non-NaN results, the scale by its
rule, each code the fp8 value nearest the scaled result (torch's saturated
cast); the scale matrix placed by the layouts' definitions (cuact/fp8.h).
The packed layout (column_major_packed, DeepGEMM's packed UE8M0) is read
back by its own definition: int32 words, word k of a row holding blocks
4k .. 4k + 3 from the low byte up (shifts, not memory order), the words
column-major over rows padded to a multiple of 4.

The CPU operators quantize the reference's double result (the exact
activation, correctly rounded), this file torch's float64 one: the codes
and scales are compared bit for bit. Where torch's float64 activation is
not exact (gelu, silu: libm, a few ulps, host-dependent), a difference is
accepted only where it is explained: the same rule applied to the result
moved by at most 2^-46 of itself (far more than libm's error, far less than
an fp8 or fp32 step) gives the operator's bits. Exact activations
(identity, relu, the GLUs' products of exact factors) get no allowance.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF

ops = torch.ops.cuact
E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2
E8M0 = torch.float8_e8m0fnu
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
FORMATS = [E4M3, E5M2]
SCALE_TYPES = ["e8m0", "e8m0_floor", "f32"]
LAYOUTS = ["row_major", "column_major", "swizzled_128x4"]
PACKED = "column_major_packed"  # 1-byte scales only (no f32)
LARGEST = {E4M3: 448.0, E5M2: 57344.0}
EMAX = {E4M3: 8, E5M2: 15}
FLT_MAX = torch.finfo(torch.float32).max
DELTA = 2.0 ** -46  # the allowance for torch's inexact float64 activations


# ------------------------------------------------------------------ the reference

def round_fp8(v, fmt):
    """v (float64) rounded to fmt: the nearest value, ties to even, saturated
    to +-largest, NaN kept, -0 kept. torch's cast (clamped first: its e5m2
    cast does not saturate) rounds from float64 through float32; where that
    first rounding lands exactly on the midpoint of two codes and v is not
    on it, the float next to it on v's side decides."""
    largest = LARGEST[fmt]
    v = v.clamp(-largest, largest)
    hi = v.float()
    lo = v - hi.double()
    up = torch.nextafter(hi, torch.full_like(hi, math.inf))
    down = torch.nextafter(hi, torch.full_like(hi, -math.inf))
    above, below = up.to(fmt).double(), down.to(fmt).double()
    midpoint = (above != below) & (2 * hi.double() == above + below)
    nudged = torch.where(lo > 0, up, down)
    return torch.where(midpoint & (lo != 0), nudged, hi).to(fmt)


def block_amax(v, block):
    """[rows, groups] max |v| over each block of a row, NaN excluded (float64)."""
    rows, cols = v.shape
    groups = -(-cols // block)
    a = torch.where(v.isnan(), torch.zeros_like(v), v.abs())
    a = F.pad(a, (0, groups * block - cols))
    return a.reshape(rows, groups, block).amax(-1) if rows * groups else a.new_zeros(rows, groups)


def block_scale(amax, fmt, scale_type):
    """The stored scale of each block: the exponent e (int64, scale 2^e) of
    the E8M0 types, the float32 scale of f32."""
    largest, emax = LARGEST[fmt], EMAX[fmt]
    if scale_type == "f32":
        a = amax.clamp(largest * 2.0 ** -126, FLT_MAX)
        return (a / largest).float()
    _, k = torch.frexp(amax)  # amax = m 2^k, m in [0.5, 1): floor(log2 amax) = k - 1
    e = (k - 1 - emax).long()
    if scale_type == "e8m0":  # the smallest e with amax <= largest 2^e: e or e + 1
        e = torch.where(amax <= torch.ldexp(torch.full_like(amax, largest), e), e, e + 1)
    e = torch.where(amax == 0, -127, e)
    e = torch.where(amax.isinf(), 127, e)
    return e.clamp(-127, 127)


def block_codes(v, fmt, block, exponents):
    """The E8M0 rule's codes: fp8(v 2^-e), e each block's exponent."""
    per_col = exponents.repeat_interleave(block, dim=1)[:, :v.shape[1]]
    return round_fp8(torch.ldexp(v, -per_col), fmt)


def f32_codes(v, fmt, block, amax):
    """The f32 rule's codes: a = amax clamped, multiplier fl32(largest / a),
    code = fp8(fl32(v * multiplier))."""
    largest = LARGEST[fmt]
    a = amax.clamp(largest * 2.0 ** -126, FLT_MAX)
    multiplier = (largest / a).float().double()
    per_col = multiplier.repeat_interleave(block, dim=1)[:, :v.shape[1]]
    return round_fp8((v * per_col).float().double(), fmt)


def scale_place(layout, rows, groups):
    """[rows, groups] int64: where each scale goes in the layout's buffer
    (cuact/fp8.h), and the buffer's entries."""
    r = torch.arange(rows).unsqueeze(1).expand(rows, groups)
    g = torch.arange(groups).unsqueeze(0).expand(rows, groups)
    if layout == "row_major":
        return r * groups + g, rows * groups
    if layout == "column_major":
        return g * rows + r, rows * groups
    tiles_across = -(-groups // 4)
    tile = (r // 128) * tiles_across + g // 4
    entries = -(-rows // 128) * 128 * tiles_across * 4
    return tile * 512 + (r % 32) * 16 + (r % 128) // 32 * 4 + g % 4, entries


def scales_shape(layout, rows, groups):
    if layout == PACKED:
        return (rows, -(-groups // 4))
    return {"row_major": (rows, groups), "column_major": (groups, rows)}.get(
        layout, (scale_place(layout, rows, groups)[1],))


def packed_strides(rows):
    """DeepGEMM's MN-major TMA-aligned strides of the packed words: (1, R4)."""
    return (1, -(-rows // 4) * 4)


def unpack_words(scales, rows, groups):
    """The packed layout's int32 words [rows, ceil(groups / 4)] (a transposed
    view, strides (1, R4)) as the [rows, groups] bytes (uint8) they hold,
    block 4k + j in bits 8j .. 8j + 7 of word k, after checking the dtype,
    shape, strides and the zero padding: the bytes of the blocks past
    groups in the last word, and the words of the rows past rows (R4 - rows
    of them per column of words, in the buffer under the view)."""
    words = -(-groups // 4)
    r4 = packed_strides(rows)[1]
    assert scales.dtype == torch.int32 and tuple(scales.shape) == (rows, words)
    assert scales.stride() == packed_strides(rows), scales.stride()
    w = scales.long() & 0xFFFFFFFF  # the words' bits, unsigned
    b = torch.stack([(w >> (8 * j)) & 0xFF for j in range(4)], dim=-1).reshape(rows, words * 4)
    assert bool((b[:, groups:] == 0).all()), "packed padding (blocks past the last) is not zero"
    if rows * words:
        base = scales.as_strided((words, r4), (r4, 1))  # the whole [words, R4] buffer
        assert bool((base[:, rows:] == 0).all()), "packed padding (rows past the last) is not zero"
    return b[:, :groups].to(torch.uint8)


def unplace(scales, layout, rows, groups, entry=E8M0):
    """The operator's scales as a [rows, groups] matrix (exponents for E8M0),
    after checking the buffer's shape and, for a swizzled or packed one, its
    zero padding. entry: the type of a packed layout's bytes (E8M0, or
    NVFP4's float8_e4m3fn)."""
    if layout == PACKED:
        scales = unpack_words(scales, rows, groups).view(entry)
        layout = "row_major"
    place, entries = scale_place(layout, rows, groups)
    assert tuple(scales.shape) == scales_shape(layout, rows, groups)
    flat = scales.reshape(-1)
    if scales.dtype == E8M0:
        flat = flat.view(torch.uint8).long() - 127
    padding = torch.ones(entries, dtype=torch.bool)
    padding[place.reshape(-1)] = False
    if scales.dtype == E8M0:
        assert bool((flat[padding] == -127).all()), "swizzled padding is not zero"
    else:  # float32, or NVFP4's float8_e4m3fn (test_nvfp4.py)
        assert bool((_bits(flat[padding]) == 0).all()), "swizzled padding is not zero"
    return flat[place]


def scales_explained(got, options):
    """Every scale of got equals one of the candidate scale matrices
    (options[0] the rule's on the exact amax, the others on amaxes moved by
    the results' own bound), else the test fails; returns how many needed
    a moved amax, and each candidate's matches ([rows, groups] booleans)."""
    fits = [_bits(s) == _bits(got) for s in options]  # [rows, groups]: candidate i gives got
    ok = fits[0].clone()
    for f in fits[1:]:
        ok |= f
    assert bool(ok.all()), (
        f"unexplained scales at {ok.logical_not().nonzero()[:5].tolist()}: "
        f"got {got[~ok][:5].float().tolist()}, want {options[0][~ok][:5].float().tolist()}")
    return int((ok & ~fits[0]).sum()), fits


def _bits(t):
    """Comparable bits: fp8 and E8M0 as bytes, float32 as int32, integers as they are."""
    if t.dtype == torch.float32:
        return t.view(torch.int32)
    return t.view(torch.uint8) if t.is_floating_point() else t


def _same(a, b):
    """Bit-equal, or both NaN (fp8 codes)."""
    return (_bits(a) == _bits(b)) | (a.float().isnan() & b.float().isnan())


def check_block_scaled(out, v, fmt, block, scale_type, layout, exact):
    """out (the operator's (codes, scales, amax) for the [rows, cols] result v
    in float64) against the reference. exact=False: torch's v is within a few
    ulps of the exact result; a difference must be explained by moving v by
    DELTA of itself. Returns the number of explained differences."""
    codes, scales, amax = out
    rows, cols = v.shape
    groups = -(-cols // block)
    assert codes.dtype == fmt and codes.shape[-1] == cols and codes.numel() == rows * cols
    assert scales.dtype == (torch.float32 if scale_type == "f32" else
                            torch.int32 if layout == PACKED else E8M0)
    assert amax.dtype == torch.float32 and amax.shape == ()
    codes = codes.reshape(rows, cols)
    moved = [v] if exact else [v, v * (1 - DELTA), v * (1 + DELTA)]
    explained = 0

    # amax over the call
    finite = [torch.where(m.isnan(), torch.zeros_like(m), m.abs()) for m in moved]
    want = [float(f.max().float()) if f.numel() else 0.0 for f in finite]
    assert float(amax) in want, (float(amax), want)

    # scales: the rule's, from amax (or, not exact, from amax moved)
    got = unplace(scales, layout, rows, groups)
    amaxes = [block_amax(m, block) for m in moved]
    options = [block_scale(a, fmt, scale_type) for a in amaxes]
    moved_amax, fits = scales_explained(got, options)
    explained += moved_amax

    # codes, with the operator's scales (f32: the multiplier from an amax
    # that gives the operator's scale)
    def want(m, i):
        if scale_type != "f32":
            return block_codes(m, fmt, block, got)
        return f32_codes(m, fmt, block, amaxes[i])

    def per_col(f):
        return f.repeat_interleave(block, dim=1)[:, :cols]

    first = _same(codes, want(v, 0)) & per_col(fits[0])
    ok = first.clone()
    for m in moved:
        for i in range(len(amaxes)):
            ok |= _same(codes, want(m, i)) & per_col(fits[i])
    explained += int((ok & ~first).sum())
    bad = ~ok
    assert not bool(bad.any()), (
        f"{int(bad.sum())} unexplained codes at {bad.nonzero()[:5].tolist()}: v "
        f"{v[bad][:5].tolist()}, got {codes[bad][:5].float().tolist()}, want "
        f"{want(v, 0)[bad][:5].float().tolist()}")
    # every NaN code is 0x7F (the reference's and CUDA's NaN)
    nan = codes.float().isnan()
    assert bool((codes.view(torch.uint8)[nan] == 0x7F).all())
    return explained


# ------------------------------------------------------------------ data

def _data(*shape, dtype=torch.float32, seed=0):
    """Normal values times a power of two per row (2^-12 .. 2^12; f16: 2^-8 ..
    2^8, within its range), so the blocks' scales differ."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    span = 8 if dtype == torch.float16 else 12
    power = torch.randint(-span, span + 1, (*shape[:-1], 1), generator=g).double()
    return (x * torch.pow(2.0, power)).to(dtype)


def _preactivation(x, bias):
    """x + bias as cuact forms it: rounded to fp32."""
    return x.double() if bias is None else (x.double() + bias.double()).float().double()


ACTIVATIONS = {"gelu": (lambda z: F.gelu(z), False), "silu": (F.silu, False),
               "relu": (F.relu, True), "identity": (lambda z: z, True),
               "gelu_tanh": (lambda z: F.gelu(z, approximate="tanh"), False)}


def _rows(t):
    return t.reshape(-1, t.shape[-1]) if t.dim() else t.reshape(1, 1)


# ------------------------------------------------------------------ bias + activation

CASES = [(dt, fmt, block, st, lay) for dt in DTYPES for fmt in FORMATS for block in (16, 32)
         for st in SCALE_TYPES for lay in LAYOUTS]
# the packed layout: the E8M0 types (it holds 1-byte scales)
CASES += [(dt, fmt, block, st, PACKED) for dt in DTYPES for fmt in FORMATS for block in (16, 32)
          for st in ("e8m0", "e8m0_floor")]


@pytest.mark.parametrize("dtype,fmt,block,scale_type,layout", CASES,
                         ids=[f"{str(c[0])[6:]}-{str(c[1])[11:]}-b{c[2]}-{c[3]}-{c[4]}"
                              for c in CASES])
def test_bias_activation_matches_the_reference(dtype, fmt, block, scale_type, layout):
    """[2, 3, 70]: 6 rows, a partial last block (70 = 2 x 32 + 6 = 4 x 16 + 6);
    with a bias (of the input's dtype, or float32 with 16-bit data) and without."""
    x = _data(2, 3, 70, dtype=dtype)
    index = CASES.index((dtype, fmt, block, scale_type, layout))
    name = list(ACTIVATIONS)[index % len(ACTIVATIONS)]
    fn, exact = ACTIVATIONS[name]
    bias_dtype = torch.float32 if dtype != torch.float32 and index % 2 else dtype
    for bias in (_data(70, dtype=bias_dtype, seed=1), None):
        out = CF.bias_activation_block_fp8(x, name.replace("_tanh", ""), bias, dtype=fmt,
                                           block=block, scale_type=scale_type,
                                           scale_layout=layout,
                                           **({"approximate": "tanh"} if "tanh" in name else {}))
        assert isinstance(out, CF.BlockScaledFloat8) and out.data.shape == x.shape
        v = fn(_preactivation(x, bias))
        check_block_scaled(out, _rows(v), fmt, block, scale_type, layout, exact)


def test_swizzled_tiles_over_many_rows_and_groups():
    """257 rows (three 128-row tiles, the last padded) x 10 groups (three
    4-group tiles): the tiles in row-major order, each entry at its place."""
    x = _data(257, 150, dtype=torch.bfloat16, seed=3)
    for st in SCALE_TYPES:
        out = ops.bias_activation_block_fp8(x, *CF.activation_params("identity"), None, E4M3, 16,
                                            st, "swizzled_128x4")
        assert out[1].shape == (3 * 128 * 3 * 4,)
        check_block_scaled(out, x.double(), E4M3, 16, st, "swizzled_128x4", True)


def test_special_blocks():
    """Per scale type and format: an all-zero block (e = -127; f32: the
    smallest scale), a block holding +inf or -inf (e = 127 / a = FLT_MAX: the
    infinity saturates, the finite results become 0), an all-NaN block (NaN
    codes, no part in the scale: as a zero block), NaN among finite values,
    +-0, tiny values (the exponent clamped at -127, f32's amax at L 2^-126),
    huge values (FLOOR saturates), and the largest finite fp32."""
    inf, nan = math.inf, math.nan
    rows = [
        [0.0] * 16,
        [1.0, -2.0, inf] + [3.0] * 13,
        [-inf, 1e30, -5.0] + [0.25] * 13,
        [nan] * 16,
        [nan, 1.0, -0.0, 0.0] + [-1.5] * 12,
        [1e-45, -1e-44, 2e-40] + [0.0] * 13,
        [448.0 * 1.9, -448.0, 57344.0 * 1.9, 1.0] + [0.0] * 12,
        [3.4028234663852886e38, -1.0] + [2.0] * 14,
    ]
    x = torch.tensor(rows, dtype=torch.float32)
    for fmt in FORMATS:
        for st in SCALE_TYPES:
            for layout in LAYOUTS + ([PACKED] if st != "f32" else []):
                out = CF.bias_activation_block_fp8(x, "identity", dtype=fmt, block=16,
                                                   scale_type=st, scale_layout=layout)
                check_block_scaled(out, x.double(), fmt, 16, st, layout, True)
            # the pieces SPEC names, from the row-major call
            rm = CF.bias_activation_block_fp8(x, "identity", dtype=fmt, block=16, scale_type=st)
            codes = rm.data.float()
            if st == "f32":
                s = rm.scales[:, 0]
                assert float(s[0]) == 2.0 ** -126
                assert float(s[1]) == float(torch.tensor(FLT_MAX / LARGEST[fmt]).float())
            else:
                e = rm.scales.view(torch.uint8).long()[:, 0] - 127
                assert e[0] == -127 and e[1] == 127 and e[2] == 127 and e[3] == -127
                assert e[5] == -127
            assert codes[1, 2] == LARGEST[fmt] and codes[2, 0] == -LARGEST[fmt]
            assert bool((codes[1, :2] == 0).all()) and bool((codes[1, 3:] == 0).all())
            assert bool(codes[3].isnan().all()) and bool(codes[4, 0].isnan())
            assert rm.data[4, 2].view(torch.uint8) == 0x80 and rm.data[4, 3].view(torch.uint8) == 0
            assert float(rm.amax) == math.inf
    # FLOOR may saturate, RCEIL never saturates a finite result
    big = torch.tensor([[1.95 * 512] + [1.0] * 31])  # floor(log2) = 9: 998.4 / 2 > 464
    floor = CF.bias_activation_block_fp8(big, "identity", scale_type="e8m0_floor")
    rceil = CF.bias_activation_block_fp8(big, "identity")
    assert float(floor.data[0, 0]) == 448.0 and int(floor.scales.view(torch.uint8)[0, 0]) == 127 + 1
    assert float(rceil.data[0, 0]) < 448.0 and int(rceil.scales.view(torch.uint8)[0, 0]) == 127 + 2


def test_blocks_of_64_and_128():
    """Blocks of 64 and 128 (DeepSeek-style groups of 128): every format,
    scale type and layout, bias + activation and a GLU, a partial last block
    (300 = 2 x 128 + 44 = 4 x 64 + 44; d = 150). cuact takes them: a
    refusal fails."""
    x = _data(3, 2, 300, dtype=torch.bfloat16, seed=20)
    bias = _data(300, seed=21)
    h = _data(5, 300, seed=22)
    v = _rows(F.relu(_preactivation(x, bias)))
    a, b = h.double().chunk(2, dim=-1)
    g = F.relu(a) * b
    for fmt in FORMATS:
        for block in (64, 128):
            for st in SCALE_TYPES:
                for layout in LAYOUTS + ([PACKED] if st != "f32" else []):
                    kw = dict(dtype=fmt, block=block, scale_type=st, scale_layout=layout)
                    out = CF.bias_activation_block_fp8(x, "relu", bias, **kw)
                    check_block_scaled(out, v, fmt, block, st, layout, True)
                    out = CF.glu_block_fp8(h, "reglu", **kw)
                    check_block_scaled(out, g, fmt, block, st, layout, True)


# ------------------------------------------------------------------ the packed layout

def test_packed_words_hold_the_row_major_bytes():
    """column_major_packed (DeepGEMM's packed UE8M0, what its fp8 GEMMs read
    from get_mn_major_tma_aligned_packed_ue8m0_tensor): int32 [rows,
    ceil(groups / 4)] with strides (1, R4) over a zeroed [ceil(groups / 4),
    R4] buffer; unpacked, the words are the row_major call's scales bit for
    bit, and the codes and amax are that call's. Rows 1 .. 9 and 130 (R4 - rows
    = 3, 2, 1, 0), groups 1 .. 9 (a partial last word or a full one), both
    E8M0 types, both formats, blocks 16 .. 128, bias + activation (leading
    dimensions: rows are their product) and a GLU."""
    cases = 0
    for rows, cols, block in [(1, 16, 16), (2, 40, 16), (3, 96, 32), (4, 130, 16),
                              (5, 300, 64), (6, 1100, 128), (7, 70, 16), (9, 288, 32),
                              (130, 72, 16)]:
        x = _data(rows, cols, dtype=torch.bfloat16, seed=rows)
        for st in ("e8m0", "e8m0_floor"):
            fmt = FORMATS[rows % 2]
            kw = dict(dtype=fmt, block=block, scale_type=st)
            calls = [lambda **k: CF.bias_activation_block_fp8(x, "gelu", **k)]
            if cols % 2 == 0:
                calls.append(lambda **k: CF.glu_block_fp8(x, "swiglu", **k))
            for call in calls:
                packed = call(scale_layout=PACKED, **kw)
                plain = call(**kw)
                groups = plain.scales.shape[1]  # the GLU's: ceil(cols / 2 / block)
                assert packed.scales.stride() == packed_strides(rows)
                got = unpack_words(packed.scales, rows, groups)
                assert torch.equal(got, plain.scales.view(torch.uint8))
                assert torch.equal(_bits(packed.data), _bits(plain.data))
                assert torch.equal(packed.amax, plain.amax)
                cases += 1
    # leading dimensions: one matrix over their product (as the other layouts)
    x = _data(2, 3, 70, seed=30)
    packed = CF.bias_activation_block_fp8(x, "relu", block=16, scale_layout=PACKED)
    assert packed.scales.shape == (6, 2) and packed.scales.stride() == (1, 8)
    check_block_scaled(packed, _rows(F.relu(x.double())), E4M3, 16, "e8m0", PACKED, True)
    assert cases == 36


def deepgemm_packed(sf):
    """DeepGEMM's get_mn_major_tma_aligned_packed_ue8m0_tensor for a 2-D
    float32 scale matrix [mn, k] of powers of two, as its PyTorch fallback
    computes it: each scale's UE8M0 byte (its float32 bits >> 23), padded
    with zeros to [R4, ceil(k / 4) * 4] bytes, read as int32 words
    [R4, ceil(k / 4)], copied into an MN-major tensor of strides (1, R4),
    the rows past mn sliced off."""
    mn, k = sf.shape
    r4, words = -(-mn // 4) * 4, -(-k // 4)
    ue8m0 = (sf.view(torch.int32) >> 23).to(torch.uint8)
    padded = torch.zeros(r4, words * 4, dtype=torch.uint8)
    padded[:mn, :k] = ue8m0
    padded = padded.view(torch.int32)
    out = torch.empty_strided((r4, words), (1, r4), dtype=torch.int32)
    return out.copy_(padded)[:mn]


def test_packed_is_deepgemm_layout():
    """The packed scales equal, in shape, strides and every word of the buffer
    under them (the padding included), what DeepGEMM's packing makes of the
    row_major call's scales as float32 powers of two (its fp8 GEMMs' sfa)."""
    for rows, cols, block in [(5, 1100, 128), (8, 300, 64), (130, 72, 16), (1, 32, 32)]:
        x = _data(rows, cols, seed=40 + rows)
        for st in ("e8m0", "e8m0_floor"):
            kw = dict(block=block, scale_type=st)
            ours = CF.bias_activation_block_fp8(x, "silu", scale_layout=PACKED, **kw).scales
            rm = CF.bias_activation_block_fp8(x, "silu", **kw).scales
            theirs = deepgemm_packed(rm.float())
            assert ours.shape == theirs.shape and ours.stride() == theirs.stride()
            r4, words = -(-rows // 4) * 4, ours.shape[1]
            assert torch.equal(ours.as_strided((words, r4), (r4, 1)),
                               theirs.as_strided((words, r4), (r4, 1)))


def test_packed_words_by_hand():
    """One row of five blocks of 16 with amaxes 2^0 .. 2^4 (e4m3, rounded
    up: the smallest e with 2^k <= 448 2^e is k - 8, the byte 119 + k): word
    0 holds blocks 0 .. 3 from the low byte up, word 1 block 4 and zeros;
    the words of rows 1 .. 3 (padding) are zero."""
    x = torch.zeros(1, 80)
    for k in range(5):
        x[0, 16 * k] = 2.0 ** k
    out = CF.bias_activation_block_fp8(x, "identity", block=16, scale_layout=PACKED)
    e = [119 + k for k in range(5)]
    want0 = e[0] | e[1] << 8 | e[2] << 16 | e[3] << 24  # < 2^31: a positive int32
    assert out.scales.tolist() == [[want0, e[4]]]
    assert out.scales.as_strided((2, 4), (4, 1)).tolist() == [[want0, 0, 0, 0], [e[4], 0, 0, 0]]
    rm = CF.bias_activation_block_fp8(x, "identity", block=16)
    assert rm.scales.view(torch.uint8)[0].tolist() == e


def test_packed_refuses_f32_scales():
    """The packed layout holds 1-byte scales: f32 is refused with cuact's
    message (the operators and the fake kernels)."""
    x = torch.ones(2, 64)
    msg = "invalid_parameter: the packed layout holds 1-byte"
    with pytest.raises(RuntimeError, match=msg):
        CF.bias_activation_block_fp8(x, "gelu", scale_type="f32", scale_layout=PACKED)
    with pytest.raises(RuntimeError, match=msg):
        CF.glu_block_fp8(x, scale_type="f32", scale_layout=PACKED)
    gelu = CF.activation_params("gelu")
    with pytest.raises(RuntimeError, match=msg):
        ops.bias_activation_block_fp8(x, *gelu, None, E4M3, 128, "f32", PACKED)
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode() as mode:
        fake = mode.from_tensor(x)
        with pytest.raises(RuntimeError, match=msg):
            ops.glu_block_fp8(fake, *gelu, True, E5M2, 32, "f32", PACKED)
        out = ops.glu_block_fp8(fake, *gelu, True, E5M2, 32, "e8m0", PACKED)
        assert out[1].dtype == torch.int32 and out[1].shape == (2, 1)
        assert out[1].stride() == (1, 4)


# ------------------------------------------------------------------ GLU

GLU_CASES = [(dt, fmt, st, glu) for dt in DTYPES for fmt in FORMATS for st in SCALE_TYPES
             for glu in ("swiglu", "geglu")] + [(torch.bfloat16, E4M3, "e8m0", "reglu"),
                                                 (torch.float32, E5M2, "f32", "glu")]
GLU_TORCH = {"swiglu": (lambda a, b: F.silu(a) * b, False),
             "geglu": (lambda a, b: F.gelu(a) * b, False),
             "reglu": (lambda a, b: F.relu(a) * b, True),
             "glu": (lambda a, b: a * torch.sigmoid(b), False)}


@pytest.mark.parametrize("dtype,fmt,scale_type,glu", GLU_CASES,
                         ids=[f"{str(c[0])[6:]}-{str(c[1])[11:]}-{c[2]}-{c[3]}" for c in GLU_CASES])
def test_glu_matches_the_reference(dtype, fmt, scale_type, glu):
    """x [4, 2, 2 x 45]: d = 45 (a partial last block for 16 and 32)."""
    x = _data(4, 2, 90, dtype=dtype, seed=5)
    fn, exact = GLU_TORCH[glu]
    a, b = x.double().chunk(2, dim=-1)
    v = _rows(fn(a, b))
    layouts = [(32, "row_major"), (16, "column_major"), (32, "swizzled_128x4")]
    if scale_type != "f32":
        layouts.append((16, PACKED))
    for block, layout in layouts:
        out = CF.glu_block_fp8(x, glu, dtype=fmt, block=block, scale_type=scale_type,
                               scale_layout=layout)
        assert out.data.shape == (4, 2, 45)
        check_block_scaled(out, v, fmt, block, scale_type, layout, exact)


def test_codes_round_once_from_double():
    """The CPU operators quantize the double result: reglu's product
    (1 + 2^-15) * 1.6875 (1 - 2^-15) = 1.6875 (1 - 2^-30), scaled by 2^6 in a
    block whose amax is 4 (e = -6), lies just below 108, the midpoint of the
    e4m3 codes 104 and 112: code 104. Rounded to fp32 first it would be the
    midpoint, and the tie would go to the even 112."""
    a = torch.tensor([[1 + 2.0 ** -15, 2.0] + [0.0] * 30], dtype=torch.float32)
    b = torch.tensor([[1.6875 * (1 - 2.0 ** -15), 2.0] + [0.0] * 30], dtype=torch.float32)
    x = torch.cat([a, b], dim=1)
    out = CF.glu_block_fp8(x, "reglu")
    assert int(out.scales.view(torch.uint8)[0, 0]) == 127 - 6
    assert float(out.data[0, 0]) == 104.0  # result ~ code * 2^-6
    v = F.relu(a.double()) * b.double()
    check_block_scaled(out, v, E4M3, 32, "e8m0", "row_major", True)
    assert float(round_fp8(v[0, :1] * 64, E4M3)) == 104.0
    assert float((v[0, :1] * 64).float().to(E4M3)) == 112.0  # fp32 first: the tie


def test_glu_parameters_and_forms():
    """swiglu's beta and geglu's approximate reach the activation; the
    operator's gate_first picks the gated half."""
    x = _data(3, 64, seed=6)
    a, b = x.double().chunk(2, dim=-1)
    out = CF.glu_block_fp8(x, "swiglu", beta=1.5)
    check_block_scaled(out, a * torch.sigmoid(a * 1.5) * b, E4M3, 32, "e8m0", "row_major", False)
    out = CF.glu_block_fp8(x, "geglu", approximate="tanh", scale_type="f32")
    check_block_scaled(out, F.gelu(a, approximate="tanh") * b, E4M3, 32, "f32", "row_major",
                       False)
    second = ops.glu_block_fp8(x, *CF.activation_params("relu"), False, E4M3, 32, "e8m0",
                               "row_major")
    check_block_scaled(second, a * F.relu(b), E4M3, 32, "e8m0", "row_major", True)


# ------------------------------------------------------------------ the functions

def test_mxfp8_is_block_32_e8m0():
    x = _data(4, 96, dtype=torch.bfloat16, seed=7)
    bias = _data(96, seed=8)
    for layout in LAYOUTS + [PACKED]:
        got = CF.mxfp8(x, "gelu", bias, scale_layout=layout)
        want = CF.bias_activation_block_fp8(x, "gelu", bias, block=32, scale_type="e8m0",
                                            scale_layout=layout)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.stride() == w.stride()
            assert torch.equal(_bits(g), _bits(w))
    plain = CF.mxfp8(x)  # identity
    check_block_scaled(plain, x.double(), E4M3, 32, "e8m0", "row_major", True)


def test_shapes_and_empty_inputs():
    """rows are the leading dimensions' product; empty inputs give empty
    codes and scales and amax 0."""
    for shape in [(0, 64), (3, 0), (2, 0, 40), (40,)]:
        x = torch.ones(shape)
        rows, cols = math.prod(shape[:-1]), shape[-1]
        for layout in LAYOUTS + [PACKED]:
            out = CF.bias_activation_block_fp8(x, "relu", block=16, scale_layout=layout)
            assert out.data.shape == shape
            assert tuple(out.scales.shape) == scales_shape(layout, rows, -(-cols // 16))
            if layout == PACKED:
                assert out.scales.stride() == packed_strides(rows)
                unpack_words(out.scales, rows, -(-cols // 16))
            assert float(out.amax) == (1.0 if x.numel() else 0.0)
    out = CF.bias_activation_block_fp8(torch.tensor(2.0), "identity", scale_type="f32")
    assert out.data.shape == () and float(out.data) == 448.0 and out.scales.shape == (1, 1)
    out = CF.glu_block_fp8(torch.ones(5, 0), "swiglu")
    assert out.data.shape == (5, 0) and out.scales.shape == (5, 0)


def test_non_contiguous_input():
    x = _data(64, 6, seed=9).t()  # [6, 64], a transpose
    out = CF.bias_activation_block_fp8(x, "silu", block=16)
    check_block_scaled(out, F.silu(x.double()), E4M3, 16, "e8m0", "row_major", False)


def test_vmap_runs_one_call_per_entry():
    """One call per batch entry, the entries stacked (packed words too: each
    entry's [rows, words] as its own call gives them)."""
    x = _data(3, 5, 40, seed=10)
    for layout in ("swizzled_128x4", PACKED):
        args = (*CF.activation_params("gelu"), None, E4M3, 16, "e8m0", layout)
        batched = torch.vmap(lambda t: ops.bias_activation_block_fp8(t, *args))(x)
        for i in range(3):
            for b, one in zip(batched, ops.bias_activation_block_fp8(x[i], *args)):
                assert torch.equal(_bits(b[i]), _bits(one))


def test_compiled_matches_eager():
    """torch.compile(fullgraph=True) of a function calling the block-scaled
    functions: the same bits as eager."""
    def step(x, bias, h):
        y = CF.mxfp8(x, "gelu", bias)
        z = CF.bias_activation_block_fp8(x, "silu", dtype=E5M2, block=16, scale_type="f32",
                                          scale_layout="column_major")
        w = CF.glu_block_fp8(h, "swiglu", scale_type="e8m0_floor",
                             scale_layout="swizzled_128x4")
        p = CF.bias_activation_block_fp8(x, "relu", block=128, scale_layout=PACKED)
        return y, z, w, p

    torch._dynamo.reset()
    x, bias, h = _data(6, 40, dtype=torch.bfloat16, seed=11), _data(40, seed=12).bfloat16(), \
        _data(2, 3, 64, seed=13)
    compiled = torch.compile(step, fullgraph=True)
    for got, want in zip(compiled(x, bias, h), step(x, bias, h)):
        assert type(got) is CF.BlockScaledFloat8
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape and g.stride() == w.stride()
            assert torch.equal(_bits(g), _bits(w))


# ------------------------------------------------------------------ CUDA (skips without a GPU)

def test_cuda_kernels_quantize_their_fp32_results(cuda):
    """On CUDA the result is computed in fp32 by the fp32 kernels' functors,
    and the codes and scales are a function of those fp32 values alone
    (SPEC): with float32 data the plain operators' results are those values,
    so the reference here applied to them gives the kernels' bits, exactly,
    in every layout and scale type."""
    x = _data(130, 72, seed=14)
    bias = _data(72, seed=15)
    h = _data(130, 2 * 40, seed=16)
    for fmt in FORMATS:
        for st in SCALE_TYPES:
            for block, layout in ((32, "row_major"), (16, "column_major"),
                                  (16, "swizzled_128x4"), (128, "row_major"),
                                  (64, "column_major")) + ((32, PACKED),) * (st != "f32"):
                kw = dict(dtype=fmt, block=block, scale_type=st, scale_layout=layout)
                out = CF.bias_activation_block_fp8(x.to(cuda), "gelu", bias.to(cuda), **kw)
                r = CF.bias_activation(x.to(cuda), bias.to(cuda), "gelu")
                check_block_scaled([t.cpu() for t in out], r.double().cpu(), fmt, block, st,
                                   layout, True)
                out = CF.glu_block_fp8(h.to(cuda), "swiglu", **kw)
                r = CF.swiglu(h.to(cuda))
                check_block_scaled([t.cpu() for t in out], r.double().cpu(), fmt, block, st,
                                   layout, True)


# ------------------------------------------------------------------ refusals

def test_inputs_that_require_grad_are_refused():
    x = _data(2, 32).requires_grad_()
    bias = _data(32).requires_grad_()
    with pytest.raises(RuntimeError, match="carry no gradient"):
        CF.bias_activation_block_fp8(x, "gelu")
    with pytest.raises(RuntimeError, match="carry no gradient"):
        CF.bias_activation_block_fp8(x.detach(), "gelu", bias)
    with pytest.raises(RuntimeError, match="carry no gradient"):
        CF.glu_block_fp8(x, "swiglu")
    with pytest.raises(RuntimeError, match="carry no gradient"):
        ops.bias_activation_block_fp8(x, *CF.activation_params("gelu"), None, E4M3, 32, "e8m0",
                                      "row_major")
    with pytest.raises(RuntimeError, match="carry no gradient"):
        ops.glu_block_fp8(x, *CF.activation_params("silu"), True, E4M3, 32, "e8m0", "row_major")
    with torch.no_grad():
        CF.mxfp8(x, "gelu", bias)
    CF.mxfp8(x.detach(), "gelu")


def test_bad_arguments():
    x = torch.ones(2, 32)
    gelu = CF.activation_params("gelu")
    for kw, match in [(dict(block=8), "block must be 16, 32, 64 or 128"),
                      (dict(block=True), "block must be 16, 32, 64 or 128"),
                      (dict(block=256), "block must be 16, 32, 64 or 128"),
                      (dict(scale_type="e4m3x"), "unknown scale_type"),
                      (dict(scale_type="e4m3"), "unknown scale_type"),  # NVFP4: *_nvfp4
                      (dict(scale_layout="swizzled"), "unknown scale_layout"),
                      (dict(scale_layout="column_major_packed_"), "unknown scale_layout")]:
        with pytest.raises(ValueError, match=match):
            CF.bias_activation_block_fp8(x, "gelu", **kw)
        with pytest.raises(ValueError, match=match):
            CF.glu_block_fp8(x, "swiglu", **kw)
    with pytest.raises(ValueError, match="unknown glu"):
        CF.glu_block_fp8(x, "gelu")
    with pytest.raises(ValueError, match="unknown activation"):
        CF.bias_activation_block_fp8(x, "nope")
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        CF.glu_block_fp8(torch.ones(2, 31))
    # the operators' own checks (RuntimeError, as the other operators' bad parameters);
    # the block sizes are cuact's to say (its Status's message)
    with pytest.raises(RuntimeError, match="invalid_parameter: block must be"):
        ops.bias_activation_block_fp8(x, *gelu, None, E4M3, 8, "e8m0", "row_major")
    with pytest.raises(RuntimeError, match="invalid_parameter: block must be"):
        ops.glu_block_fp8(x, *gelu, True, E4M3, 2 ** 40, "e8m0", "row_major")
    with pytest.raises(RuntimeError, match="unknown scale_type"):
        ops.bias_activation_block_fp8(x, *gelu, None, E4M3, 32, "nope", "row_major")
    with pytest.raises(RuntimeError, match="unknown scale_layout"):
        ops.glu_block_fp8(x, *gelu, True, E4M3, 32, "e8m0", "nope")
    with pytest.raises(RuntimeError, match="bias must be 1-D"):
        ops.bias_activation_block_fp8(x, *gelu, torch.ones(31), E4M3, 32, "e8m0", "row_major")
    with pytest.raises(TypeError, match="bias is"):
        ops.bias_activation_block_fp8(x.half(), *gelu, torch.ones(32, dtype=torch.bfloat16),
                                      E4M3, 32, "e8m0", "row_major")
    # dtypes: the output a fp8 format, the input float32 / float16 / bfloat16
    with pytest.raises(NotImplementedError, match="unsupported output dtype"):
        CF.bias_activation_block_fp8(x, "gelu", dtype=torch.float16)
    with pytest.raises(NotImplementedError, match="float64 inputs are not supported"):
        CF.bias_activation_block_fp8(x.double(), "gelu")
    with pytest.raises(NotImplementedError, match="float64 inputs are not supported"):
        CF.glu_block_fp8(x.double())
    with pytest.raises(NotImplementedError):
        CF.bias_activation_block_fp8(torch.ones(2, 32, dtype=torch.int32), "relu")
