"""Parity with torch.nn.functional on the CPU, forward and gradient, every op x
dtype over a dense grid and SPEC's special inputs. Differences are classified
(parity.CLASSES); an unexplained one fails. The classified ones form the
table in docs/PYTORCH_PARITY.md: exactly its rows for the classes that are
cuact's choices, a subset of them for the host-dependent classes
(parity.HOST_DEPENDENT). CUACT_UPDATE_PARITY=1 rewrites the table (see
parity.merge); the table is the union of runs under every ATEN_CPU_CAPABILITY.
The fp8 outputs (the *_fp8 functions) are compared the same way with PyTorch's
unfused quantization, code for code; their differences form the second table."""
import functools
import math
import os
import pathlib

import mpmath as mp
import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF
from cases import DTYPES, ELEMENTWISE, dense_grid, exact_value
from parity import (FP8_NAMES, Differences, agree, classify_elementwise, classify_fp8,
                    fp8_scale, merge, parse_table, round_fp8, table, torch_fp8)

PARITY_DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "PYTORCH_PARITY.md"
BEGIN, END = "<!-- parity-table:begin -->", "<!-- parity-table:end -->"


def _values_and_grad(fn, x, dy):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    (g,) = torch.autograd.grad(y, x, dy.reshape(y.shape))
    return y.detach().reshape(-1), g.detach().reshape(-1)


KINKS = {"hardswish": (-3.0, 3.0), "rrelu": (0.0,)}  # SPEC's branch differs from PyTorch's


def _glu_exact(x, i, direction):
    """glu's exact value at output i (forward) or its gradient at input i (dy = 1)."""
    pairs = x.reshape(-1, 2).tolist()
    if direction == "forward":
        a, b = pairs[i]
    else:
        a, b = pairs[i // 2]
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    s = 1 / (1 + mp.exp(-mp.mpf(b)))
    if direction == "forward":
        return float(a * s)
    return float(s) if i % 2 == 0 else float(a * s * (1 - s))


@functools.lru_cache(maxsize=None)
def elementwise_differences(index, dtype):
    case = ELEMENTWISE[index]
    diffs = Differences()
    x = dense_grid(case, dtype)
    n_out = case.theirs(x).numel()
    dy = torch.ones(n_out, dtype=dtype)
    ours = _values_and_grad(case.ours, x, dy)
    theirs = _values_and_grad(case.theirs, x, dy)
    fp32_params = (None, None)
    if dtype == torch.float64 and case.theirs_fp32_params is not None:
        fp32_params = _values_and_grad(case.theirs_fp32_params, x, dy)
    xd = x.double()
    for direction, k in (("forward", 0), ("gradient", 1)):
        o, t = ours[k].double(), theirs[k].double()
        for i in (~agree(o, t, dtype)).nonzero().flatten().tolist():
            if case.name == "glu":  # output i's gate b decides NaN/inf; input i otherwise
                xi = float(xd.reshape(-1, 2)[i, 1]) if k == 0 else float(xd[i])
                truth = _glu_exact(xd, i, direction)
            else:
                xi = float(xd[i])
                truth = exact_value(case, xi, direction)
            alt = None if fp32_params[k] is None else float(fp32_params[k][i])
            from_y = None
            if direction == "gradient" and case.name in ("sigmoid", "tanh"):
                y = mp.mpf(float(ours[0].double()[i]))
                from_y = float(y * (1 - y) if case.name == "sigmoid" else 1 - y * y)
            kink = direction == "gradient" and xi in KINKS.get(case.name, ())
            cls = classify_elementwise(xi, float(t[i]), float(o[i]), truth, dtype, alt, from_y,
                                       kink)
            diffs.add(case.label, dtype, direction, cls, xi, float(t[i]), float(o[i]))
    return diffs


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("index", range(len(ELEMENTWISE)), ids=[c.label for c in ELEMENTWISE])
def test_elementwise_matches_pytorch(index, dtype):
    diffs = elementwise_differences(index, dtype)
    assert not diffs.unexplained, "unexplained differences (input, PyTorch, cuact): " + "; ".join(
        f"{k} x={x!r} torch={t!r} cuact={o!r}" for k, x, t, o in diffs.unexplained[:10])


def test_prelu_matches_pytorch():
    g = torch.Generator().manual_seed(3)
    for dtype in DTYPES:
        x = torch.randn(4, 3, 5, generator=g, dtype=torch.float64).to(dtype)
        x[0, 0, :3] = torch.tensor([0.0, -math.inf, math.inf])
        w = torch.tensor([0.25, -0.5, 2.0], dtype=dtype)
        for fn_w in (w, w[:1]):
            y1 = CF.prelu(x, fn_w)
            y2 = F.prelu(x, fn_w)
            assert torch.equal(y1, y2), dtype
            xa, wa = x.clone().requires_grad_(), fn_w.clone().requires_grad_()
            xb, wb = x.clone().requires_grad_(), fn_w.clone().requires_grad_()
            dy = torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype)
            CF.prelu(xa, wa).backward(dy)
            F.prelu(xb, wb).backward(dy)
            assert torch.equal(xa.grad, xb.grad), dtype
            # dweight: cuact sums the exact terms (in double, rounded once), PyTorch in its
            # dtype: they agree to the dtype's epsilon times the sum of the terms' magnitudes.
            terms = (dy.double() * x.double()).where(x.double() <= 0, 0.0)
            terms = terms.abs().sum() if fn_w.numel() == 1 else terms.abs().sum((0, 2))
            a, b = wa.grad.double(), wb.grad.double()
            err = torch.where((a == b) | (a.isnan() & b.isnan()), 0.0, (a - b).abs())
            assert (err <= 4 * torch.finfo(dtype).eps * terms + 1e-300).all(), (dtype, err, terms)


def _softmax_rows(dtype):
    """Rows of every kind: random, with -inf entries, all -inf, +inf, NaN, huge."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 33, generator=g, dtype=torch.float64) * 4
    x[1, 3:9] = -math.inf
    x[2, :] = -math.inf
    x[3, 5] = math.inf
    x[4, 7] = math.nan
    x[5, :] = 1e4
    x[6, ::2] = -1e30
    x[7, :] = torch.finfo(dtype).max if dtype != torch.float64 else 1e300
    return x.to(dtype)


SOFTMAX_KINDS = [("softmax", CF.softmax, F.softmax), ("log_softmax", CF.log_softmax, F.log_softmax),
                 ("softmin", CF.softmin, F.softmin)]


def _softmax_class(kind, direction, row_ours, hidden, empty, y, dy, dtype, scale):
    """The class of a disagreeing softmax row (float64 rows), where cuact's row
    is what the contract says. `hidden`: the columns the mask and causal
    settings hide (they decide, not the input: a -inf input column is visible,
    as in PyTorch); `empty`: every z of the row is -inf. An empty row gives
    zeros (log_softmax's forward: -inf) and a gradient without NaN: 0, but
    log_softmax's is dy at its columns not hidden (exp(y) = 0 there);
    log_softmax's gradient with hidden columns is dy - exp(y) * (sum of the
    visible dy), 0 at the hidden ones."""
    if empty:
        if kind == "log_softmax" and direction == "gradient":
            want = torch.where(hidden, 0.0, dy)
        else:
            want = torch.full_like(row_ours, -math.inf if kind == "log_softmax" else 0.0)
        return "masked_row" if bool((row_ours == want).all()) else None
    if kind == "log_softmax" and direction == "gradient" and hidden.any():
        want = torch.where(hidden, 0.0, dy - y.exp() * dy.where(~hidden, 0.0).sum())
        ok = agree(row_ours, want, dtype, scale)
        return "hidden_column_gradient" if bool(ok.all()) else None
    return None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,ours_fn,theirs_fn", SOFTMAX_KINDS, ids=[k[0] for k in SOFTMAX_KINDS])
def test_softmax_matches_pytorch(name, ours_fn, theirs_fn, dtype):
    diffs = softmax_differences(name, dtype)
    assert not diffs.unexplained, "; ".join(f"{k} row={x} torch={t} cuact={o}"
                                            for k, x, t, o in diffs.unexplained[:5])


@functools.lru_cache(maxsize=None)
def softmax_differences(name, dtype):
    _, ours_fn, theirs_fn = next(k for k in SOFTMAX_KINDS if k[0] == name)
    diffs = Differences()
    sign = -1.0 if name == "softmin" else 1.0
    x = _softmax_rows(dtype)
    causal_mask = torch.ones(12, 33, dtype=torch.bool).tril(diagonal=2)
    # (label, cuact's arguments, PyTorch's, PyTorch's input, the hidden columns of the rows)
    variants = [
        ("dim=-1", dict(dim=-1), dict(dim=-1), x, None),
        ("dim=0", dict(dim=0), dict(dim=0), x, None),
        ("3-D, dim=1", dict(dim=1), dict(dim=1), x.reshape(3, 4, 33), None),
        # softmin(x) with mask m is softmax(-x + m): PyTorch's softmin of x - m
        ("additive mask", dict(dim=-1, mask=torch.where(causal_mask, 0.0, -math.inf).to(dtype)),
         dict(dim=-1), x + sign * torch.where(causal_mask, 0.0, -math.inf).to(dtype),
         ~causal_mask),
        ("causal, offset 2", dict(dim=-1, causal=True, causal_offset=2), dict(dim=-1),
         x.masked_fill(~causal_mask, sign * -math.inf), ~causal_mask),
    ]
    for label, ours_kw, theirs_kw, theirs_x, hidden_cols in variants:
        xin = x.reshape(theirs_x.shape) if label.startswith("3-D") else x
        dy = torch.randn(xin.shape, generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64).to(dtype)
        ours = _values_and_grad(lambda t: ours_fn(t, **ours_kw), xin, dy)
        theirs = _values_and_grad(lambda t: theirs_fn(t, **theirs_kw), theirs_x, dy)
        truth = (None, None)
        if dtype != torch.float64:
            truth = _values_and_grad(lambda t: theirs_fn(t, **theirs_kw), theirs_x.double(),
                                     dy.double())
        dim = theirs_kw["dim"] % xin.dim()
        shape = xin.shape
        for direction, k in (("forward", 0), ("gradient", 1)):
            o = ours[k].double().reshape(shape).movedim(dim, -1).reshape(-1, shape[dim])
            t = theirs[k].double().reshape(shape).movedim(dim, -1).reshape(-1, shape[dim])
            tx = theirs_x.double().reshape(shape).movedim(dim, -1).reshape(-1, shape[dim])
            tr = None
            if truth[k] is not None:
                tr = truth[k].double().reshape(shape).movedim(dim, -1).reshape(-1, shape[dim])
            # The terms each result is a difference of (its cancellation scale).
            y = ours[0].double().reshape(shape).movedim(dim, -1).reshape(-1, shape[dim])
            g = dy.double().reshape(shape).movedim(dim, -1).reshape(-1, shape[dim])
            if direction == "forward":
                scale = (y.abs() + math.log(shape[dim])) if name == "log_softmax" else None
            elif name == "log_softmax":
                scale = g.abs() + y.exp() * g.abs().sum(1, keepdim=True)
            else:
                scale = y.abs() * (g.abs() + (g * y).abs().sum(1, keepdim=True))
            bad = ~agree(o, t, dtype, scale)
            bad_rows = bad.any(dim=1).nonzero().flatten().tolist()
            for r in bad_rows:
                hidden = (torch.zeros(shape[dim], dtype=torch.bool) if hidden_cols is None
                          else hidden_cols[r])
                empty = bool(((sign * tx[r]) == -math.inf).all())
                cls = _softmax_class(name, direction, o[r], hidden, empty, y[r], g[r], dtype,
                                     None if scale is None else scale[r])
                mism = bad[r]
                if cls is None and tr is not None:
                    # PyTorch's own rounding: cuact within tolerance of the float64 result
                    # wherever it disagrees with PyTorch in this dtype.
                    sc = None if scale is None else scale[r][mism]
                    if agree(o[r][mism], tr[r][mism], dtype, sc).all():
                        cls = "pytorch_rounding"
                j = int(mism.nonzero()[0])
                diffs.add(f"{name} ({label})", dtype, direction, cls,
                          f"row {r}, column {j}: x = {float(tx[r][j]):.6g}",
                          float(t[r][j]), float(o[r][j]))
    return diffs


def _all_differences():
    found = set()
    for i in range(len(ELEMENTWISE)):
        for dt in DTYPES:
            found |= elementwise_differences(i, dt).found
    for name, _, _ in SOFTMAX_KINDS:
        for dt in DTYPES:
            found |= softmax_differences(name, dt).found
    return found


def _check_doc_table(begin, end, found):
    text = PARITY_DOC.read_text()
    assert begin in text and end in text, f"{PARITY_DOC} lacks the {begin} ... {end} block"
    head, rest = text.split(begin, 1)
    current, tail = rest.split(end, 1)
    listed = parse_table(current)
    wanted = table(merge(listed, found))
    if os.environ.get("CUACT_UPDATE_PARITY") == "1":
        PARITY_DOC.write_text(f"{head}{begin}\n{wanted}\n{end}{tail}")
        return
    missing, stale = sorted(found - listed), sorted(listed - merge(listed, found))
    assert current.strip() == wanted, (
        f"docs/PYTORCH_PARITY.md's table {begin} is stale: rerun with CUACT_UPDATE_PARITY=1 "
        "(under each ATEN_CPU_CAPABILITY) and commit it. Found, not listed: "
        f"{missing[:10]}; listed, not found: {stale[:10]}")


def test_parity_doc_lists_every_difference():
    _check_doc_table(BEGIN, END, _all_differences())


# ------------------------------------------------------------------ fp8 outputs

FP8_BEGIN, FP8_END = "<!-- fp8-parity-table:begin -->", "<!-- fp8-parity-table:end -->"
# Each format with the delayed recipe (a given scale whose significand makes
# most products inexact in fp32, so that double rounding shows) and the
# current one (with margin and power_of_two for e5m2).
FP8_RECIPES = {
    torch.float8_e4m3fn: [dict(scale=100.0 / 3), dict(margin=0, power_of_two=False)],
    torch.float8_e5m2: [dict(scale=1000.0 / 3), dict(margin=1, power_of_two=True)],
}
FP8_CASES = [i for i, c in enumerate(ELEMENTWISE) if c.activation is not None or c.name == "glu"]


def _fp8_pair(case, x, direction, fmt, recipe):
    """(cuact's Float8Output, PyTorch's float64 result, the same with the
    parameters rounded to fp32 or None) at x, dy = 1."""
    kw = dict(recipe)
    if "scale" in kw:
        kw["scale"] = torch.tensor([kw["scale"]], dtype=torch.float32)
    xd = x.double()
    if case.name == "glu":  # forward only: cuact has no fp8 GLU backward
        ours = CF.glu_fp8(x.reshape(-1, 2), -1, fmt, **kw)
        return ours, F.glu(xd.reshape(-1, 2), -1).reshape(-1), None
    name, params = case.activation
    alt = case.theirs_fp32_params
    if direction == "forward":
        ours = CF.activation_fp8(x, name, fmt, **kw, **params)
        return ours, case.theirs(xd), None if alt is None else alt(xd)
    ours = CF.activation_backward_fp8(x, torch.ones_like(x), name, fmt, **kw, **params)

    def grad(fn):
        t = xd.clone().requires_grad_()
        return torch.autograd.grad(fn(t), t, torch.ones_like(t))[0]
    return ours, grad(case.theirs), None if alt is None else grad(alt)


@functools.lru_cache(maxsize=None)
def fp8_differences(index, dtype):
    case = ELEMENTWISE[index]
    diffs = Differences()
    directions = ("forward",) if case.name == "glu" else ("forward", "gradient")
    for fmt, recipes in FP8_RECIPES.items():
        for recipe in recipes:
            x = dense_grid(case, dtype)
            if "scale" not in recipe:  # the current recipe: an amax of the grid's scale
                x = x[(x.abs() <= 100) | x.isnan()]
                x = x[:x.numel() // 2 * 2]
            for direction in directions:
                ours, r64, alt64 = _fp8_pair(case, x, direction, fmt, recipe)
                scale = float(ours.scale)
                if "scale" in recipe:
                    assert scale == float(torch.tensor(recipe["scale"], dtype=torch.float32))
                else:  # SPEC's rule from the amax cuact returns
                    assert scale == fp8_scale(fmt, float(ours.amax), recipe["margin"],
                                              recipe["power_of_two"]), (float(ours.amax), scale)
                assert float(ours.scale_inv) == float(torch.tensor(1 / scale,
                                                                   dtype=torch.float32))
                o = ours.data.double().reshape(-1)
                t = torch_fp8(r64, scale, fmt)
                alt = None if alt64 is None else round_fp8(alt64 * scale, fmt)
                label = f"{case.label} -> {FP8_NAMES[fmt]}"
                xd = x.double()
                for i in (~((o == t) | (o.isnan() & t.isnan()))).nonzero().flatten().tolist():
                    if case.name == "glu":
                        xi = float(xd.reshape(-1, 2)[i, 1])
                        truth = _glu_exact(xd, i, direction)
                    else:
                        xi = float(xd[i])
                        truth = exact_value(case, xi, direction)
                    kink = direction == "gradient" and xi in KINKS.get(case.name, ())
                    cls = classify_fp8(xi, float(t[i]), float(o[i]), float(r64[i]) * scale,
                                       None if truth is None else truth * scale, fmt,
                                       None if alt is None else float(alt[i]), kink)
                    diffs.add(label, dtype, direction, cls, xi, float(t[i]), float(o[i]))
    return diffs


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("index", FP8_CASES, ids=[ELEMENTWISE[i].label for i in FP8_CASES])
def test_fp8_outputs_match_pytorch(index, dtype):
    diffs = fp8_differences(index, dtype)
    assert not diffs.unexplained, "unexplained differences (input, PyTorch, cuact): " + "; ".join(
        f"{k} x={x!r} torch={t!r} cuact={o!r}" for k, x, t, o in diffs.unexplained[:10])


def test_parity_doc_lists_every_fp8_difference():
    found = set()
    for i in FP8_CASES:
        for dt in DTYPES:
            found |= fp8_differences(i, dt).found
    _check_doc_table(FP8_BEGIN, FP8_END, found)
