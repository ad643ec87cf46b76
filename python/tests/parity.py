"""Element-by-element comparison of cuact with PyTorch, and the classes of
difference the contract (docs/SPEC.md) chooses on purpose.

Two values agree when both are NaN, or equal, or within the dtype's tolerance:
TOLERANCE_ULPS[dtype] units in the last place of the larger. A disagreement
is explained by one of CLASSES (the contract's choices, or PyTorch's own
rounding error, judged against PyTorch's float64 result); anything else is a
defect in the contract or the code.
"""
import collections
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
    "masked_row": "a row with every entry hidden gives zeros (softmax) or -inf "
                  "(log_softmax) and a zero gradient, not NaN (SPEC)",
    "hidden_column_gradient": "log_softmax backward reads dy of a hidden column as 0 (SPEC); "
                              "PyTorch passes dy there and sums it",
}


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
    """Disagreements found, grouped by (operation, dtype, direction, class)."""

    def __init__(self):
        self.groups = collections.OrderedDict()
        self.unexplained = []

    def add(self, op, dtype, direction, cls, x, theirs, ours):
        key = (op, DTYPE_NAMES[dtype], direction, cls)
        if cls is None:
            self.unexplained.append((key, x, theirs, ours))
            return
        count, example = self.groups.get(key, (0, (x, theirs, ours)))
        self.groups[key] = (count + 1, example)

    def table(self):
        lines = ["| operation | dtype | direction | class | count | input | PyTorch | cuact |",
                 "|---|---|---|---|---|---|---|---|"]
        for (op, dt, direction, cls), (count, (x, theirs, ours)) in sorted(self.groups.items()):
            lines.append(f"| {op} | {dt} | {direction} | {cls} | {count} | {_fmt(x)} | "
                         f"{_fmt(theirs)} | {_fmt(ours)} |")
        return "\n".join(lines)


def _fmt(v):
    if isinstance(v, str):
        return v
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.9g}"


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
