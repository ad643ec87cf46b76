"""Element-by-element comparison of cuact with PyTorch, and the classes of
difference the contract (docs/SPEC.md) chooses on purpose.

Two values agree when both are NaN, or equal, or within the dtype's tolerance:
TOLERANCE_ULPS[dtype] units in the last place of the larger. A disagreement
is explained by one of CLASSES (the contract's choices, or PyTorch's own
rounding error, judged against PyTorch's float64 result); anything else is a
defect in the contract or the code. `table` writes the classified ones as
docs/PYTORCH_PARITY.md's tables. fp8 codes (the *_fp8 functions) are compared
exactly with PyTorch's float64 result times the scale, cast as PyTorch casts
(`torch_fp8`); `classify_fp8` explains a disagreement.
"""
import collections
import functools
import math

import torch

MANTISSA_BITS = {torch.float32: 23, torch.bfloat16: 7, torch.float16: 10, torch.float64: 52}
TOLERANCE_ULPS = {torch.float32: 4, torch.bfloat16: 1, torch.float16: 1, torch.float64: 4096}
DTYPE_NAMES = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16",
               torch.float64: "f64"}

CLASSES = {
    "nan_propagates": "NaN in gives NaN out (SPEC: no max/compare that swallows NaN); "
                      "PyTorch's piecewise backward gives a number",
    "infinite_limit": "an infinite input gives the mathematical limit (SPEC), PyTorch gives NaN",
    "fp32_parameter": "the activation's parameters are fp32 (cuact::Activation's fields): "
                      "float64 data use the parameter rounded to fp32",
    "backward_from_output": "the gradient is computed from the saved, rounded output y (as "
                            "PyTorch's sigmoid and tanh are): cuact's is exact for that y, "
                            "PyTorch's rounds in the dtype",
    "kink_choice": "at the kink cuact takes SPEC's branch (hardswish'(+-3) from the middle "
                   "formula, rrelu'(0) = 1 from x >= 0); PyTorch takes the other",
    "pytorch_rounding": "cuact's value is the exact result correctly rounded (checked in 150-digit "
                        "arithmetic, or against PyTorch's float64 value); PyTorch's is farther",
    "masked_row": "a row with every entry -inf (hidden, or -inf inputs) gives zeros (softmax) "
                  "or -inf (log_softmax) and a gradient without NaN (SPEC): zero, but "
                  "log_softmax's is dy at the columns the mask and causal settings leave "
                  "visible",
    "hidden_column_gradient": "log_softmax backward reads dy of a column the mask or causal "
                              "settings hide as 0 (SPEC; the settings decide, not y); PyTorch "
                              "passes dy there and sums it",
    "fp8_double_rounding": "an fp8 code: result * scale lies within half an fp32 ulp of a "
                           "rounding boundary between two codes, and one side rounded it to "
                           "fp32 first (PyTorch's cast from float64 converts through float; "
                           "cuact's kernels round the fp32 product; cuact's CPU reference "
                           "rounds once from double): each code is one of the two neighbours "
                           "docs/ACCURACY.md (\"Quantized outputs\") allows",
}

# Classes whose rows depend on the host: PyTorch's CPU kernels round (and, in
# their vectorized paths, treat NaN) differently per instruction set
# (ATEN_CPU_CAPABILITY), so where PyTorch's value is farther from the exact one
# or swallows a NaN differs between machines. Their table rows say where they
# may arise; the other classes are cuact's choices against PyTorch's formulas
# and arise in exactly their rows on every host.
HOST_DEPENDENT = {"pytorch_rounding", "backward_from_output", "nan_propagates"}


def ulp(v, dtype):
    """The spacing of dtype at |v| (float64 tensor in, float64 out)."""
    bits = MANTISSA_BITS[dtype]
    _, e = torch.frexp(v.abs().to(torch.float64))
    spacing = torch.ldexp(torch.ones_like(v, dtype=torch.float64), e - 1 - bits)
    smallest = torch.finfo(dtype).smallest_normal * 2.0 ** -bits
    return torch.clamp(spacing, min=smallest)


def agree(a, b, dtype, scale=None, ulps=None):
    """Elementwise: a and b (float64 tensors of dtype values) agree. `scale`:
    the magnitude of the terms a result is a difference of (a reduction's
    cancellation), which the tolerance's ulp is taken at when larger."""
    both_nan = a.isnan() & b.isnan()
    equal = a == b
    finite = a.isfinite() & b.isfinite()
    big = torch.maximum(a.abs(), b.abs())
    if scale is not None:
        big = torch.maximum(big, torch.nan_to_num(scale, nan=0.0, posinf=0.0))
    ulps = TOLERANCE_ULPS[dtype] if ulps is None else ulps
    close = finite & ((a - b).abs() <= ulps * ulp(torch.where(finite, big, 0), dtype))
    return both_nan | equal | close


class Differences:
    """Disagreements found: the classified ones as (operation, dtype, direction,
    class) keys, the unexplained ones with an example (input, PyTorch, cuact)."""

    def __init__(self):
        self.found = set()
        self.unexplained = []

    def add(self, op, dtype, direction, cls, x, theirs, ours):
        key = (op, DTYPE_NAMES[dtype], direction, cls)
        if cls is None:
            self.unexplained.append((key, x, theirs, ours))
        else:
            self.found.add(key)


# The table of differences: one row per (operation, class), the dtypes where
# it arises in each direction. Nothing in it depends on the host: no counts,
# no example values (PyTorch's CPU kernels round them differently per
# instruction set).
TABLE_HEAD = ["| operation | class | forward | gradient | arises |",
              "|---|---|---|---|---|"]
ARISES = {False: "always", True: "may (PyTorch's CPU kernels)"}
DTYPE_ORDER = list(DTYPE_NAMES.values())


def table(keys):
    """The markdown table of a set of (operation, dtype, direction, class) keys."""
    rows = collections.defaultdict(lambda: {"forward": set(), "gradient": set()})
    for op, dt, direction, cls in keys:
        rows[op, cls][direction].add(dt)
    lines = list(TABLE_HEAD)
    for (op, cls), where in sorted(rows.items()):
        cells = [", ".join(d for d in DTYPE_ORDER if d in where[k]) or "-"
                 for k in ("forward", "gradient")]
        lines.append(f"| {op} | {cls} | {cells[0]} | {cells[1]} | "
                     f"{ARISES[cls in HOST_DEPENDENT]} |")
    return "\n".join(lines)


def parse_table(text):
    """The keys a table (as `table` writes it) lists."""
    keys = set()
    for line in text.splitlines():
        if line in TABLE_HEAD or not line.startswith("|"):
            continue
        op, cls, fwd, grad = [c.strip() for c in line.strip("|").split("|")][:4]
        for direction, cell in (("forward", fwd), ("gradient", grad)):
            keys.update((op, dt, direction, cls) for dt in cell.split(", ") if dt != "-")
    return keys


def merge(listed, found):
    """What the table must list: exactly the contract classes' rows found (a
    contract row that stops arising is stale), and for the host-dependent
    classes whatever another host has listed as well as what arises here."""
    return found | {k for k in listed if k[3] in HOST_DEPENDENT}


def _close(a, b, dtype):
    return b is not None and bool(agree(torch.tensor([a], dtype=torch.float64),
                                        torch.tensor([b], dtype=torch.float64), dtype))


def classify_elementwise(x, theirs, ours, truth, dtype, theirs_fp32_params=None,
                         exact_from_output=None, kink=False):
    """The class of one disagreement of an elementwise value (floats)."""
    if kink:
        return "kink_choice"
    if _close(ours, exact_from_output, dtype):
        return "backward_from_output"
    if theirs_fp32_params is not None and bool(agree(torch.tensor([ours], dtype=torch.float64),
                                                    torch.tensor([theirs_fp32_params],
                                                                 dtype=torch.float64), dtype)):
        return "fp32_parameter"
    if math.isnan(x) and math.isnan(ours) and not math.isnan(theirs):
        return "nan_propagates"
    if math.isinf(x) and not math.isnan(ours) and math.isnan(theirs):
        return "infinite_limit"
    if truth is not None and not math.isnan(truth):
        t = torch.tensor([truth], dtype=torch.float64)
        o = torch.tensor([ours], dtype=torch.float64)
        p = torch.tensor([theirs], dtype=torch.float64)
        rounded = t.to(dtype).to(torch.float64)
        ours_right = bool(agree(o, rounded, dtype)) or bool(agree(o, t, dtype))
        theirs_err = float((p - t).abs()) if math.isfinite(theirs) else math.inf
        ours_err = float((o - t).abs()) if math.isfinite(ours) else math.inf
        if ours_right and (theirs_err > ours_err or math.isnan(theirs_err)):
            return "pytorch_rounding"
    return None


# ------------------------------------------------------------------ fp8 codes

FP8_NAMES = {torch.float8_e4m3fn: "e4m3", torch.float8_e5m2: "e5m2"}


@functools.lru_cache(maxsize=None)
def fp8_values(fmt):
    """The finite non-negative values of an fp8 format, ascending: index = code."""
    v = torch.arange(128, dtype=torch.uint8).view(fmt).double()
    v = v[v.isfinite()]
    assert bool((v[1:] > v[:-1]).all())
    return v


def fp8_max(fmt):
    return float(fp8_values(fmt)[-1])


def round_fp8(v, fmt):
    """float64 v rounded once to the format (nearest, ties to the even code),
    saturated to +-max, NaN kept, the sign of zero kept: docs/SPEC.md's "fp8
    formats", written from the format's values (float64 out)."""
    vals = fp8_values(fmt)
    a = v.abs().clamp(max=float(vals[-1]))
    i = torch.searchsorted(vals, a.nan_to_num(0.0).contiguous()).clamp(1, len(vals) - 1)
    lo, hi = vals[i - 1], vals[i]
    mid = (lo + hi) / 2  # exact in double
    up = (a > mid) | ((a == mid) & (i % 2 == 0))
    r = torch.copysign(torch.where(up, hi, lo), v)
    return torch.where(v.isnan(), v, r)


def torch_fp8(r, scale, fmt):
    """PyTorch's unfused quantization of a float64 result r: r * scale, a
    saturated cast (clamp to +-max, NaN kept, then .to(fmt)), as float64."""
    m = fp8_max(fmt)
    return (r * scale).clamp(-m, m).to(fmt).double()


def fp8_scale(fmt, amax, margin=0, power_of_two=False):
    """The current recipe's scale (docs/SPEC.md, "Quantized outputs"):
    fl32(max_fp8 / amax) / 2^margin clamped to the normal fp32 range, its
    significand dropped with power_of_two; 1 where amax is 0, NaN or inf."""
    if not amax > 0 or not math.isfinite(amax):
        return 1.0
    s = float(torch.tensor(fp8_max(fmt), dtype=torch.float32) /
              torch.tensor(amax, dtype=torch.float32))
    s = math.ldexp(s, -margin)
    f32 = torch.finfo(torch.float32)
    s = min(max(s, f32.tiny), f32.max)
    if power_of_two:
        s = math.ldexp(0.5, math.frexp(s)[1])
    return s


def classify_fp8(x, theirs, ours, v64, exact, fmt, theirs_fp32_params=None, kink=False):
    """The class of one disagreeing fp8 code (floats: the input, PyTorch's code,
    cuact's code, PyTorch's float64 result times the scale, the exact result
    times the scale or None, and the code PyTorch's float64 result with the
    parameters rounded to fp32 rounds to, once, or None)."""
    if kink:
        return "kink_choice"
    if theirs_fp32_params is not None and not math.isnan(v64) and (
            theirs_fp32_params == ours != float(round_fp8(torch.tensor([v64], dtype=torch.float64),
                                                          fmt))):
        return "fp32_parameter"  # the parameter's rounding moves the correctly rounded code
    if math.isnan(x) and math.isnan(ours) and not math.isnan(theirs):
        return "nan_propagates"
    if math.isinf(x) and not math.isnan(ours) and math.isnan(theirs):
        return "infinite_limit"
    if math.isnan(ours):
        return None
    if not math.isnan(v64):
        v = torch.tensor([v64], dtype=torch.float64)
        once = float(round_fp8(v, fmt))
        twice = float(round_fp8(v.float().double(), fmt))
        boundary = (once + twice) / 2  # the rounding boundary between the two codes
        near = abs(v64 - boundary) <= 0.5 * float(ulp(v, torch.float32))
        if ours == once and theirs == twice and once != twice and near:
            return "fp8_double_rounding"
    if exact is not None and math.isfinite(exact):
        want = float(round_fp8(torch.tensor([exact], dtype=torch.float64), fmt))
        if ours == want and theirs != want:
            return "pytorch_rounding"
    return None
