"""cuact.functional.cross_entropy, the fused softmax cross-entropy: the loss
and the input's gradient (autograd) against torch.nn.functional.cross_entropy
and against docs/SPEC.md's formulas written here in PyTorch, both in float64
on the input's values, over float32, float16 and bfloat16, every reduction,
ignore_index (every row too), class weights, label smoothing in both forms,
z-loss, soft-capping, the logit scale and a row stride; the operator's
opcheck, torch.compile, vmap and the module; rows of -inf logits;
inplace_backward (the gradient written over the input) and how its misuse
is caught; the refusals (second derivative, forward mode, a weight that
requires grad, bad arguments, an out-of-bounds target). The CUDA half
(kernels against the CPU reference, -inf rows, in place, a bad target's
device-side assertion, no host synchronization, CUDA-graph capture) skips
without a GPU (fails with CUACT_REQUIRE_GPU=1)."""
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF
import cuact.nn
from parity import agree

ops = torch.ops.cuact
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REDUCTIONS = ["none", "sum", "mean"]
IGNORE = -100


def _f32(v):
    """A parameter as cuact holds it (cuact::CrossEntropy's fields are fp32)."""
    return float(torch.tensor(v, dtype=torch.float32))


def _logits(dtype, rows=16, classes=50, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, classes, generator=g, dtype=torch.float64) * spread).to(dtype)


def _targets(rows=16, classes=50, ignored=(2, 9), ignore_index=IGNORE, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, classes, (rows,), generator=g)
    t[list(ignored)] = ignore_index
    return t


def _upstream(loss):
    """The loss's upstream gradient: 1, or for "none" a power of two per row
    (the product with dlogits rounds nothing, so the gradient is rounded
    once, as for a sum or mean)."""
    if loss.dim() == 0:
        return torch.ones((), dtype=torch.float64)
    return 2.0 ** torch.arange(loss.numel(), dtype=torch.float64).remainder(3).sub(1)


def _ours(x, target, **kw):
    """cuact's loss and the input's gradient through autograd."""
    x = x.detach().clone().requires_grad_()
    loss = CF.cross_entropy(x, target, **kw)
    assert loss.dtype == torch.float32
    loss.backward(_upstream(loss).float())
    assert x.grad.dtype == x.dtype and x.grad.shape == x.shape
    return loss.detach(), x.grad


def _reference(fn, x, target, weight=None, **kw):
    """fn (F.cross_entropy or spec_cross_entropy) in float64 on x's values:
    its loss and the input's gradient."""
    x = x.detach().double().requires_grad_()
    loss = fn(x, target.long(), None if weight is None else weight.double(), **kw)
    loss.backward(_upstream(loss))
    return loss.detach(), x.grad


def _assert_agree(ours, ref, dtype):
    """The package's rule (parity.agree): both NaN, equal, or within the
    dtype's ulps (float32: 4; float16, bfloat16: 1)."""
    assert ours.shape == ref.shape
    ok = agree(ours.double(), ref, dtype)
    assert ok.all(), (ours[~ok][:5], ref[~ok][:5])


def _check(x, target, reference, weight=None, **kw):
    """cuact against `reference` given the float options rounded to fp32, as
    cuact holds them (the gradient's p_j - eps / C cancels: the rounding of
    eps shows there)."""
    loss, grad = _ours(x, target, weight=weight, **kw)
    ref_kw = {k: _f32(v) if isinstance(v, float) else v for k, v in kw.items()}
    ref_loss, ref_grad = _reference(reference, x, target, weight, **ref_kw)
    _assert_agree(loss, ref_loss, torch.float32)  # the loss is float32 whatever the input's dtype
    _assert_agree(grad, ref_grad, x.dtype)


def spec_cross_entropy(x, t, weight=None, ignore_index=IGNORE, reduction="mean",
                       label_smoothing=0.0, smoothing="pytorch", z_loss=0.0, softcap=0.0,
                       logit_scale=1.0, empty_mean_is_zero=False, parts=False):
    """docs/SPEC.md, "Cross-entropy", in float64 PyTorch operations, with the
    parameters rounded to fp32 as cuact holds them. parts=True: (reduced
    loss, lse, the rows' z-loss, the mean's denominator D)."""
    eps, lam, cap, s = (_f32(v) for v in (label_smoothing, z_loss, softcap, logit_scale))
    z = s * x
    if cap > 0:
        z = cap * torch.tanh(z / cap)
    classes = z.shape[-1]
    lse = torch.logsumexp(z, -1)
    counted = t != ignore_index
    tc = torch.where(counted, t, 0)
    nll = lse - z.gather(-1, tc[:, None])[:, 0]
    if smoothing == "megatron":
        a = eps * classes / (classes - 1)
        loss = (1 - a) * nll + a * (lse - z.mean(-1))
        count = torch.ones_like(lse)
    else:
        w = torch.ones(classes, dtype=z.dtype) if weight is None else weight
        loss = (1 - eps) * w[tc] * nll + eps / classes * (w * (lse[:, None] - z)).sum(-1)
        count = w[tc]
    rows_z = torch.where(counted, lam * lse ** 2, 0.0)
    loss = torch.where(counted, loss, 0.0) + rows_z
    d = torch.where(counted, count, 0.0).sum()
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = loss.sum()
    elif d == 0 and empty_mean_is_zero:
        out = loss.sum() * 0
    else:
        out = loss.sum() / d  # no counted row: 0 / 0, NaN
    return (out, lse, rows_z, d) if parts else out


# ------------------------------------------------------------------ parity with PyTorch

# (weight, options) beside F.cross_entropy's arguments
TORCH_CASES = {
    "plain": (None, {}),
    "class weights": ("weight", {}),
    "label smoothing": (None, {"label_smoothing": 0.1}),
    "weights and label smoothing": ("weight", {"label_smoothing": 0.2}),
    "ignore_index a class": (None, {"ignore_index": 7}),
}


def _weight(classes=50, dtype=torch.float32):
    g = torch.Generator().manual_seed(2)
    return (torch.rand(classes, generator=g, dtype=torch.float64) * 2 + 0.1).to(dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(TORCH_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_pytorch(dtype, case, reduction):
    weight, kw = TORCH_CASES[case]
    t = _targets(ignore_index=kw.get("ignore_index", IGNORE))
    w = _weight() if weight else None
    _check(_logits(dtype), t, F.cross_entropy, w, reduction=reduction, **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_weight_and_targets_of_other_dtypes(dtype):
    """int32 targets, a weight in the logits' dtype or another one."""
    t = _targets()
    for w in (_weight(dtype=dtype), _weight(dtype=torch.bfloat16), _weight(dtype=torch.float32)):
        _check(_logits(dtype), t.int(), F.cross_entropy, w, label_smoothing=0.1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_row_ignored(dtype, reduction):
    """A mean over no counted row is NaN, as PyTorch's (0 with
    empty_mean_is_zero); the gradient is zero."""
    x = _logits(dtype, rows=4)
    t = torch.full((4,), IGNORE)
    _check(x, t, F.cross_entropy, reduction=reduction)
    loss, grad = _ours(x, t, reduction=reduction, empty_mean_is_zero=True)
    assert not grad.any()
    if reduction == "mean":
        assert CF.cross_entropy(x, t).isnan() and loss == 0 and not loss.signbit()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_no_rows(reduction):
    x = torch.empty(0, 5, requires_grad=True)
    t = torch.empty(0, dtype=torch.int64)
    ours = CF.cross_entropy(x, t, reduction=reduction)
    theirs = F.cross_entropy(x, t, reduction=reduction)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, equal_nan=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_one_dimensional_input(dtype, reduction):
    """[C] logits with a 0-d target: one row, a 0-d loss for every reduction."""
    x = _logits(dtype, rows=1)[0]
    for t in (torch.tensor(4), torch.tensor(IGNORE)):
        loss, _ = _ours(x, t, reduction=reduction)
        assert loss.shape == ()
        _check(x, t, F.cross_entropy, reduction=reduction, label_smoothing=0.1)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_rows_with_a_row_stride_are_read_in_place(dtype):
    """2-D rows a row stride apart (a vocabulary padded to 64) are read as
    they are, and the operator's dlogits has their row stride; a transposed
    input is made contiguous first. Both give the contiguous input's result."""
    wide = _logits(dtype, classes=64)
    x = wide[:, :50]
    t = _targets()
    _check(x, t, F.cross_entropy)
    out = ops.cross_entropy(x, t, None, IGNORE, "mean", 0.0, "pytorch", 0.0, 0.0, 1.0, False)
    assert out[3].stride() == (64, 1)
    for layout in (x, x.t().contiguous().t()):
        assert torch.equal(_ours(layout, t)[1], _ours(x.contiguous(), t)[1])
    with pytest.raises(RuntimeError, match="dense last dimension"):
        ops.cross_entropy(x.t(), t[:50], None, IGNORE, "mean", 0.0, "pytorch", 0.0, 0.0, 1.0,
                          False)


# ------------------------------------------------------------------ rows of -inf logits

NINF = -math.inf


def _minus_inf_rows(dtype, case):
    """Logits [4, 6] with -inf entries, and targets (none ignored): "all"
    row 0 entirely -inf (a counted row: NaN loss and gradient row, so a NaN
    sum and mean, as PyTorch's); "some" row 0 partly -inf with its target on
    a -inf class (loss inf, finite gradient) and row 1 partly -inf with a
    finite target."""
    x = _logits(dtype, rows=4, classes=6)
    if case == "all":
        x[0] = NINF
    else:
        x[0, [0, 2, 5]] = NINF
        x[1, [1, 4]] = NINF
    return x, torch.tensor([0, 3, 5, 2])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["all", "some"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_rows_of_minus_inf_logits_match_pytorch(dtype, case, reduction):
    x, t = _minus_inf_rows(dtype, case)
    loss, grad = _ours(x, t, reduction=reduction)
    _check(x, t, F.cross_entropy, reduction=reduction)
    _check(x, t, F.cross_entropy, reduction=reduction, label_smoothing=0.1)
    if case == "all":
        assert loss.isnan().any() and grad[0].isnan().all() and grad[1:].isfinite().all()
    else:
        assert loss.isinf().any() and grad.isfinite().all()


def test_ignored_row_of_minus_inf_logits_has_zero_gradient():
    """An ignored row of -inf logits: loss 0 and gradient 0 (SPEC: an ignored
    row has none), the other rows' loss and gradient as without it.
    PyTorch's gradient row is NaN there (next test)."""
    x, t = _minus_inf_rows(torch.float32, "all")
    t[0] = IGNORE
    for reduction in REDUCTIONS:
        loss, grad = _ours(x, t, reduction=reduction)
        assert loss.isfinite().all() and not grad[0].any()
        ref_loss, ref_grad = _reference(F.cross_entropy, x, t, reduction=reduction)
        _assert_agree(loss, ref_loss, torch.float32)
        _assert_agree(grad[1:], ref_grad[1:], torch.float32)


@pytest.mark.xfail(strict=True, reason="PyTorch 2.15 (CPU, float32 and float64): an ignored row "
                   "of -inf logits has loss 0 but gradient row [nan, nan, nan, nan, nan, nan] "
                   "(log_softmax's backward 0 - exp(nan) * 0); cuact gives zeros (SPEC: an "
                   "ignored row has gradient 0)")
def test_ignored_row_of_minus_inf_logits_matches_pytorch():
    x, t = _minus_inf_rows(torch.float32, "all")
    t[0] = IGNORE
    _check(x, t, F.cross_entropy, reduction="sum")


# ------------------------------------------------------------------ cuact's options

# Options PyTorch lacks, against spec_cross_entropy.
SPEC_CASES = {
    "megatron smoothing": {"label_smoothing": 0.1, "smoothing": "megatron"},
    "z_loss": {"z_loss": 1e-3},
    "z_loss, weights and smoothing": {"z_loss": 1e-2, "label_smoothing": 0.1, "weight": True},
    "softcap": {"softcap": 5.0},
    "softcap and logit_scale": {"softcap": 4.0, "logit_scale": 0.7},
    "logit_scale": {"logit_scale": 1.5},
    "megatron, z_loss, softcap, scale": {"label_smoothing": 0.2, "smoothing": "megatron",
                                         "z_loss": 1e-4, "softcap": 6.0, "logit_scale": 0.5},
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(SPEC_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_options_match_the_formulas(dtype, case, reduction):
    kw = dict(SPEC_CASES[case])
    w = _weight() if kw.pop("weight", False) else None
    _check(_logits(dtype), _targets(), spec_cross_entropy, w, reduction=reduction, **kw)


def test_softcap_caps_the_logits_as_pytorch_would():
    """softcap and logit_scale are F.cross_entropy of softcap * tanh(x *
    scale / softcap), z_loss adds z_loss * lse^2 to each counted row: plain
    PyTorch on the transformed logits."""
    x, t = _logits(torch.float32), _targets()
    cap, scale, lam = 5.0, 0.75, 1e-3
    capped = lambda v: cap * torch.tanh(v * scale / cap)  # noqa: E731

    def theirs(v, target, weight, reduction):
        z = capped(v)
        rows = F.cross_entropy(z, target, reduction="none")
        rows = rows + torch.where(target != IGNORE, _f32(lam) * torch.logsumexp(z, -1) ** 2, 0.0)
        return {"none": rows, "sum": rows.sum(), "mean": rows.sum() / (target != IGNORE).sum()}[
            reduction]
    for reduction in REDUCTIONS:
        loss, grad = _ours(x, t, reduction=reduction, softcap=cap, logit_scale=scale, z_loss=lam)
        ref_loss, ref_grad = _reference(lambda v, tt, w: theirs(v, tt, w, reduction), x, t)
        _assert_agree(loss, ref_loss, torch.float32)
        _assert_agree(grad, ref_grad, torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_lse_and_z_loss_outputs(dtype):
    """The operator's lse (every row) and z_loss (z_loss * lse^2 of a counted
    row, 0 else) and return_z_loss's z-loss part, reduced as the loss is."""
    x, t = _logits(dtype), _targets()
    kw = dict(z_loss=1e-2, label_smoothing=0.1, softcap=8.0)
    for reduction in REDUCTIONS:
        _, lse, rows_z, d = spec_cross_entropy(x.double(), t, reduction=reduction, parts=True,
                                               **kw)
        out = ops.cross_entropy(x, t, None, IGNORE, reduction, 0.1, "pytorch", 1e-2, 8.0, 1.0,
                                False)
        _assert_agree(out[1], lse, torch.float32)
        _assert_agree(out[2], rows_z, torch.float32)
        assert not out[2][t == IGNORE].any()
        loss, z = CF.cross_entropy(x, t, reduction=reduction, return_z_loss=True, **kw)
        plain = CF.cross_entropy(x, t, reduction=reduction, **dict(kw, z_loss=0.0))
        want = {"none": rows_z, "sum": rows_z.sum(), "mean": rows_z.sum() / d}[reduction]
        torch.testing.assert_close(z, want.float())
        torch.testing.assert_close(loss - z, plain)  # the loss is the rest plus the z-loss part
        assert not z.requires_grad


def test_return_z_loss_of_no_counted_row():
    x, t = _logits(torch.float32, rows=3), torch.full((3,), IGNORE)
    assert CF.cross_entropy(x, t, z_loss=1e-3, return_z_loss=True)[1].isnan()
    for flag in (True, False):
        loss, z = CF.cross_entropy(x, t, z_loss=1e-3, return_z_loss=True, reduction="sum",
                                   empty_mean_is_zero=flag)
        assert loss == 0 and z == 0
    loss, z = CF.cross_entropy(x, t, z_loss=1e-3, return_z_loss=True, empty_mean_is_zero=True)
    assert loss == 0 and z == 0


# ------------------------------------------------------------------ autograd

def test_only_the_loss_carries_a_gradient():
    x = _logits(torch.float32).requires_grad_()
    loss, lse, rows_z, dlogits = ops.cross_entropy(x, _targets(), None, IGNORE, "mean", 0.1,
                                                   "pytorch", 1e-3, 0.0, 1.0, False)
    assert loss.requires_grad
    assert not (lse.requires_grad or rows_z.requires_grad or dlogits.requires_grad)


def test_second_derivative_raises():
    """A gradient taken with create_graph=True raises when differentiated
    again, also where plain ones came in (once_differentiable would give a
    constant there, and the penalty's gradient would be zero)."""
    x = _logits(torch.float32).requires_grad_()
    t = _targets()
    (g,) = torch.autograd.grad(CF.cross_entropy(x, t), x, create_graph=True)
    with pytest.raises(RuntimeError, match="no second derivative"):
        (g.pow(2).sum() + x.sum()).backward()
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.func.grad(lambda v: torch.func.grad(lambda u: CF.cross_entropy(u, t))(v)
                        .pow(2).sum())(x.detach())
    # a first derivative under create_graph=True or torch.func.grad is the plain one
    (plain,) = torch.autograd.grad(CF.cross_entropy(x, t), x)
    assert torch.equal(g.detach(), plain)
    assert torch.equal(torch.func.grad(lambda u: CF.cross_entropy(u, t))(x.detach()), plain)


def test_forward_mode_raises():
    x, t = _logits(torch.float32), _targets()
    with pytest.raises(NotImplementedError, match="forward-mode"):
        torch.func.jvp(lambda v: CF.cross_entropy(v, t), (x,), (torch.ones_like(x),))
    import torch.autograd.forward_ad as fwad
    with fwad.dual_level(), pytest.raises(NotImplementedError, match="forward-mode"):
        CF.cross_entropy(fwad.make_dual(x, torch.ones_like(x)), t)


def test_weight_that_requires_grad_is_refused():
    """As PyTorch's nll_loss (no derivative for the weight): the backward
    raises rather than leave the weight's gradient out; without grad mode the
    call computes."""
    x, t = _logits(torch.float32).requires_grad_(), _targets()
    w = _weight().requires_grad_()
    loss = CF.cross_entropy(x, t, w)
    with pytest.raises(RuntimeError, match="argument 'weight'"):
        loss.backward()
    with torch.no_grad():
        assert torch.equal(CF.cross_entropy(x, t, w), CF.cross_entropy(x, t, w.detach()))


def test_vmap_is_one_call_per_entry():
    """Each batch entry its own call (a mean over its own rows), the loss and
    its gradient (vmap of torch.func.grad)."""
    x, t = torch.stack([_logits(torch.float32), _logits(torch.float32, seed=3)]), _targets()
    for reduction in REDUCTIONS:
        f = lambda v: CF.cross_entropy(v, t, reduction=reduction).sum()  # noqa: E731
        assert torch.equal(torch.func.vmap(f)(x), torch.stack([f(v) for v in x]))
        grads = torch.func.vmap(torch.func.grad(f))(x)
        assert torch.equal(grads, torch.stack([torch.func.grad(f)(v) for v in x]))


def test_module_matches_pytorchs():
    x, t, w = _logits(torch.float32), _targets(), _weight()
    ours = cuact.nn.CrossEntropyLoss(w, ignore_index=IGNORE, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(w, ignore_index=IGNORE, label_smoothing=0.1)
    torch.testing.assert_close(ours(x, t), theirs(x, t))
    assert "weight" in ours.state_dict()
    loss, z = cuact.nn.CrossEntropyLoss(z_loss=1e-3, return_z_loss=True)(x, t)
    assert z > 0 and loss > z


# ------------------------------------------------------------------ inplace_backward

def _produced(x):
    """x as a layer's output: a non-leaf (a leaf that requires grad cannot be
    written in place) whose producer's gradient is `.grad` of the returned
    leaf. (x * s) with s = 1 gives x's values exactly."""
    s = torch.ones((), dtype=x.dtype, device=x.device, requires_grad=True)
    return x.detach() * s, s


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_inplace_backward_is_the_out_of_place_call(dtype, reduction):
    """inplace_backward=True: the same loss, the input overwritten by the
    operator's dlogits, and the same gradient handed to the input's producer
    (the upstream gradient applied there), bit for bit."""
    w = _weight()
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1, z_loss=1e-3, softcap=20.0,
              return_z_loss=True)
    x, t = _logits(dtype), _targets()
    results = []
    for inplace in (False, True):
        logits, s = _produced(x)
        loss, z = CF.cross_entropy(logits, t, inplace_backward=inplace, **kw)
        after = logits.detach().clone()
        loss.backward(_upstream(loss).float())
        results.append((loss.detach(), z, after, s.grad))
    (loss, z, after, ds), (loss_i, z_i, after_i, ds_i) = results
    dlogits = ops.cross_entropy(x, t, w, IGNORE, reduction, 0.1, "pytorch", 1e-3, 20.0, 1.0,
                                False)[3]
    assert torch.equal(loss, loss_i) and torch.equal(z, z_i)
    assert torch.equal(after, x) and torch.equal(after_i, dlogits)
    assert torch.equal(ds, ds_i)


def test_inplace_backward_after_backward_holds_the_gradient():
    """After the backward the input holds the gradient it handed on (dlogits
    times the upstream gradient): the memory the producer's backward read."""
    x, t = _logits(torch.float32), _targets()
    logits, _ = _produced(x)
    loss = CF.cross_entropy(logits, t, reduction="sum", inplace_backward=True)
    (g,) = torch.autograd.grad(loss * 4, logits)
    assert g.data_ptr() == logits.data_ptr()
    assert torch.equal(logits.detach(), 4 * ops.cross_entropy(x, t, None, IGNORE, "sum", 0.0,
                                                              "pytorch", 0.0, 0.0, 1.0, False)[3])


def test_inplace_backward_of_rows_with_a_row_stride_and_of_one_row():
    """Rows a row stride apart (a padded vocabulary's view) are written where
    they lie, the padding untouched; a [C] input too."""
    wide, t = _logits(torch.bfloat16, classes=64), _targets()
    ref = ops.cross_entropy(wide[:, :50], t, None, IGNORE, "mean", 0.0, "pytorch", 0.0, 0.0,
                            1.0, False)
    grads = []
    for inplace in (False, True):
        padded, s = _produced(wide)
        x = padded[:, :50]
        loss = CF.cross_entropy(x, t, inplace_backward=inplace)
        assert torch.equal(loss, ref[0])
        assert torch.equal(x.detach(), ref[3] if inplace else wide[:, :50])
        assert torch.equal(padded[:, 50:].detach(), wide[:, 50:])
        loss.backward()
        grads.append(s.grad)
    assert torch.equal(*grads)
    row, s = _produced(_logits(torch.float32, rows=1)[0])
    ref = ops.cross_entropy(row.detach()[None], torch.tensor([4]), None, IGNORE, "mean", 0.0,
                            "pytorch", 0.0, 0.0, 1.0, False)
    loss = CF.cross_entropy(row, torch.tensor(4), inplace_backward=True)
    assert loss.shape == () and torch.equal(loss, ref[0].reshape(()))
    assert torch.equal(row.detach(), ref[3][0])
    loss.backward()


def test_inplace_backward_without_a_gradient_still_overwrites():
    """The input holds dlogits after the call in every grad mode (no graph:
    nothing else changes), a leaf that requires grad too under no_grad, as
    torch's in-place operations allow there."""
    x, t = _logits(torch.float16), _targets()
    dlogits = ops.cross_entropy(x, t, None, IGNORE, "mean", 0.0, "pytorch", 0.0, 0.0, 1.0,
                                False)[3]
    y = x.clone()
    loss = CF.cross_entropy(y, t, inplace_backward=True)
    assert not loss.requires_grad and torch.equal(y, dlogits)
    leaf = x.clone().requires_grad_()
    with torch.no_grad():
        CF.cross_entropy(leaf, t, inplace_backward=True)
    assert torch.equal(leaf.detach(), dlogits)
    y = x.clone()
    cuact.nn.CrossEntropyLoss(inplace_backward=True)(y, t)
    assert torch.equal(y, dlogits)


def test_inplace_backward_misuse_is_caught():
    """A backward that reads the old logits raises (the version counter):
    the producer's own (sigmoid saves its output) and another consumer's
    (pow saves its input); a second backward of the same graph raises (the
    saved gradient was scaled in place); a second derivative raises."""
    x, t = _logits(torch.float32), _targets()
    raw = x.clone().requires_grad_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        CF.cross_entropy(raw.sigmoid(), t, inplace_backward=True).backward()
    logits, _ = _produced(x)
    side = logits.pow(2).sum()
    loss = CF.cross_entropy(logits, t, inplace_backward=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (loss + side).backward()
    logits, _ = _produced(x)
    loss = CF.cross_entropy(logits, t, inplace_backward=True)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    logits, s = _produced(x)
    (g,) = torch.autograd.grad(CF.cross_entropy(logits, t, inplace_backward=True), s,
                               create_graph=True)
    with pytest.raises(RuntimeError, match="no second derivative"):
        g.backward()
    logits, _ = _produced(x)
    loss = CF.cross_entropy(logits, t, _weight().requires_grad_(), inplace_backward=True)
    with pytest.raises(RuntimeError, match="argument 'weight'"):
        loss.backward()


def test_inplace_operator_bumps_the_version_and_refuses_a_recorded_call():
    """torch.ops.cuact.cross_entropy_inplace on its own: the logits' version
    counter is bumped (a saved copy of the old logits raises), and a call
    autograd would record raises (the operator has no derivative)."""
    x, t = _logits(torch.float32), _targets()
    args = (t, None, IGNORE, "mean", 0.0, "pytorch", 0.0, 0.0, 1.0, False)
    y = x.clone()
    version = y._version
    loss, lse, rows_z = ops.cross_entropy_inplace(y, *args)
    ref = ops.cross_entropy(x, *args)
    assert y._version > version
    assert torch.equal(y, ref[3]) and torch.equal(loss, ref[0]) and torch.equal(lse, ref[1])
    logits, _ = _produced(x)
    side = logits.pow(2).sum()
    with torch.no_grad():
        ops.cross_entropy_inplace(logits, *args)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        side.backward()
    logits, _ = _produced(x)
    with pytest.raises(RuntimeError, match="cross_entropy_inplace has no derivative"):
        ops.cross_entropy_inplace(logits, *args)
    assert torch.equal(logits.detach(), x)  # refused before anything is written


x4_ = _logits(torch.float32, rows=4, classes=6)
t4_ = torch.tensor([0, 5, IGNORE, 2])
BAD_INPLACE = {
    "a leaf that requires grad": (RuntimeError, "is a leaf that requires grad",
                                  lambda: x4_.clone().requires_grad_()),
    "a view of a leaf that requires grad": (
        RuntimeError, "is a view of a leaf that requires grad",
        lambda: torch.zeros(4, 8, requires_grad=True)[:, :6]),
    "transposed (a copy would take the gradient)": (ValueError, "not read where it lies",
                                                    lambda: x4_.t().contiguous().t()),
    "rows that overlap (expanded)": (ValueError, "not read where it lies",
                                     lambda: x4_[:1].expand(4, 6)),
}


@pytest.mark.parametrize("name", list(BAD_INPLACE))
def test_inplace_backward_refuses_inputs_it_cannot_overwrite(name):
    error, match, make = BAD_INPLACE[name]
    x = make()
    before = x.detach().clone()
    with pytest.raises(error, match=match):
        CF.cross_entropy(x, t4_, inplace_backward=True)
    assert torch.equal(x.detach(), before)


def test_inplace_backward_refusals_of_transforms_and_bad_targets():
    """[C] with a stride, torch.func transforms and forward mode are refused;
    an out-of-bounds target raises before the input is written."""
    with pytest.raises(ValueError, match="not read where it lies"):
        CF.cross_entropy(torch.zeros(12)[::2], torch.tensor(1), inplace_backward=True)
    f = lambda v: CF.cross_entropy(v, t4_, inplace_backward=True)  # noqa: E731
    with pytest.raises(NotImplementedError, match="torch.func transforms"):
        torch.func.grad(f)(x4_.clone())
    with pytest.raises(NotImplementedError, match="torch.func transforms"):
        torch.func.vmap(f)(x4_.clone()[None])
    import torch.autograd.forward_ad as fwad
    with fwad.dual_level(), pytest.raises(NotImplementedError, match="forward-mode"):
        f(fwad.make_dual(x4_.clone(), torch.ones_like(x4_)))
    y = x4_.clone()
    with pytest.raises(RuntimeError, match=r"target 6 \(row 1\) is out of bounds"):
        CF.cross_entropy(y, torch.tensor([0, 6, 1, 2]), inplace_backward=True)
    assert torch.equal(y, x4_)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_opcheck_inplace(dtype):
    for args in _op_samples(dtype)[:4]:
        logits = args[0].detach().clone() if args[0].is_contiguous() else \
            _logits(dtype, rows=6, classes=12, seed=4)[:, :9]
        torch.library.opcheck(ops.cross_entropy_inplace, (logits,) + args[1:])


def test_compiled_training_step_in_place_matches_eager():
    """torch.compile(fullgraph=True) with inplace_backward=True: the loss and
    the parameters' gradients as eager's out-of-place call; a compiled
    function overwrites a logits input as eager does."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 50))
    x, t = torch.randn(16, 8), _targets()

    def step(inplace):
        return CF.cross_entropy(model(x), t, label_smoothing=0.1, inplace_backward=inplace)
    results = []
    for fn, inplace in ((step, False), (torch.compile(step, fullgraph=True), True)):
        model.zero_grad()
        loss = fn(inplace)
        loss.backward()
        results.append([loss.detach()] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    f = lambda v: CF.cross_entropy(v, t, reduction="sum", inplace_backward=True)  # noqa: E731
    y, y_compiled = _logits(torch.float32), _logits(torch.float32)
    assert torch.equal(f(y), torch.compile(f, fullgraph=True)(y_compiled))
    assert torch.equal(y, y_compiled) and not torch.equal(y, _logits(torch.float32))


# ------------------------------------------------------------------ the operator

def _op_samples(dtype):
    """(args) of cuact::cross_entropy: every reduction and option, int32 and
    int64 targets, a weight, rows with a row stride."""
    x = _logits(dtype, rows=6, classes=9).requires_grad_()
    wide = _logits(dtype, rows=6, classes=12, seed=4)[:, :9].requires_grad_()
    t = _targets(6, 9, ignored=(1,))
    w = _weight(9)
    return [
        (x, t, None, IGNORE, "mean", 0.0, "pytorch", 0.0, 0.0, 1.0, False),
        (x, torch.tensor([0, 8, 3, 2, 3, 4], dtype=torch.int32), w, 3, "none", 0.1, "pytorch",
         1e-3, 0.0, 1.0, False),
        (x, t, None, IGNORE, "sum", 0.2, "megatron", 1e-4, 5.0, 0.5, True),
        (wide, t, w.to(dtype), IGNORE, "mean", 0.1, "pytorch", 0.0, 0.0, 1.0, False),
        (x, torch.full((6,), IGNORE), None, IGNORE, "mean", 0.0, "pytorch", 0.0, 0.0, 1.0, True),
    ]


OP_CASES = [(dt, i) for dt in DTYPES for i in range(len(_op_samples(torch.float32)))]


@pytest.mark.parametrize("dtype,index", OP_CASES, ids=[f"{dt}-{i}" for dt, i in OP_CASES])
def test_opcheck(dtype, index):
    torch.library.opcheck(ops.cross_entropy, _op_samples(dtype)[index])


def _loss(model, x, t):
    return CF.cross_entropy(model(x), t, label_smoothing=0.1, z_loss=1e-3, softcap=30.0,
                            return_z_loss=True)


def test_compiled_training_step_matches_eager():
    """torch.compile(fullgraph=True) of a model's loss: no graph break; the
    loss, the z-loss and the parameters' gradients as eager's."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 50))
    x, t = torch.randn(16, 8), _targets()
    results = []
    for fn in (_loss, torch.compile(_loss, fullgraph=True)):
        model.zero_grad()
        loss, z = fn(model, x, t)
        loss.backward()
        results.append([loss.detach(), z] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------ refusals

x_ = _logits(torch.float32, rows=4, classes=6)
t_ = torch.tensor([0, 5, IGNORE, 2])
BAD = {
    "float targets [N]": (TypeError, "int32 or int64", lambda: CF.cross_entropy(x_, t_.float())),
    "uint8 targets": (TypeError, "int32 or int64",
                      lambda: CF.cross_entropy(x_, t_.clamp(0).to(torch.uint8))),
    "class-probability targets": (NotImplementedError, "class-probability",
                                  lambda: CF.cross_entropy(x_, x_.softmax(-1))),
    "target past the classes (CPU)": (
        RuntimeError, r"target 6 \(row 1\) is out of bounds: neither a class in \[0, 6\) nor "
        r"ignore_index \(-100\)", lambda: CF.cross_entropy(x_, torch.tensor([0, 6, 1, 2]))),
    "int32 target past the classes (CPU)": (
        RuntimeError, r"target 9 \(row 3\) is out of bounds",
        lambda: CF.cross_entropy(x_, torch.tensor([0, 5, 1, 9], dtype=torch.int32))),
    "negative target, not ignore_index (CPU)": (
        RuntimeError, r"target -100 \(row 2\) is out of bounds: neither a class in \[0, 6\) "
        r"nor ignore_index \(-1\)", lambda: CF.cross_entropy(x_, t_, ignore_index=-1)),
    "target past the classes, the operator (CPU)": (
        RuntimeError, r"cuact.cross_entropy: target 6 \(row 0\) is out of bounds",
        lambda: ops.cross_entropy(x_, torch.tensor([6, 0, 0, 0]), None, IGNORE, "none", 0.0,
                                  "pytorch", 0.0, 0.0, 1.0, False)),
    "bad reduction": (ValueError, "not a valid value for reduction",
                      lambda: CF.cross_entropy(x_, t_, reduction="avg")),
    "bad smoothing form": (ValueError, "label smoothing form",
                           lambda: CF.cross_entropy(x_, t_, smoothing="timm")),
    "weight of the wrong length": (RuntimeError, "weight must be a contiguous 1-D tensor",
                                   lambda: CF.cross_entropy(x_, t_, torch.ones(5))),
    "2-D weight": (RuntimeError, "weight must be",
                   lambda: CF.cross_entropy(x_, t_, torch.ones(1, 6))),
    "float64 weight": (TypeError, "it takes float32, float16 or bfloat16",
                       lambda: CF.cross_entropy(x_, t_, torch.ones(6, dtype=torch.float64))),
    "3-D input": (NotImplementedError, "move the classes last",
                  lambda: CF.cross_entropy(x_.reshape(2, 2, 6), t_.reshape(2, 2))),
    "0-d input": (RuntimeError, "0-d", lambda: CF.cross_entropy(x_[0, 0], t_[0])),
    "batch mismatch": (ValueError, "batch_size", lambda: CF.cross_entropy(x_, t_[:3])),
    "2-D target": (RuntimeError, "multi-target", lambda: CF.cross_entropy(x_, t_[:, None])),
    "1-D input with two targets": (RuntimeError, "0-d target",
                                   lambda: CF.cross_entropy(x_[0], t_[:2])),
    "float64 input": (NotImplementedError, "float64", lambda: CF.cross_entropy(x_.double(), t_)),
    "integer input": (NotImplementedError, "not implemented for",
                      lambda: CF.cross_entropy(x_.long(), t_)),
    "label_smoothing 1.5": (RuntimeError, "label_smoothing must be in",
                            lambda: CF.cross_entropy(x_, t_, label_smoothing=1.5)),
    "Megatron's smoothing with class weights": (
        RuntimeError, "no class weights",
        lambda: CF.cross_entropy(x_, t_, torch.ones(6), smoothing="megatron")),
    "negative z_loss": (RuntimeError, "z_loss must be", lambda: CF.cross_entropy(x_, t_,
                                                                                 z_loss=-1.0)),
    "negative softcap": (RuntimeError, "softcap must be",
                         lambda: CF.cross_entropy(x_, t_, softcap=-1.0)),
    "softcap 0 in float32": (RuntimeError, "rounds to 0",
                             lambda: CF.cross_entropy(x_, t_, softcap=1e-50)),
    "logit_scale 0": (RuntimeError, "logit_scale must be",
                      lambda: CF.cross_entropy(x_, t_, logit_scale=0.0)),
    # torch's fourth and sixth positions are size_average and reduce
    "size_average in ignore_index's place": (TypeError, "ignore_index must be an int",
                                             lambda: CF.cross_entropy(x_, t_, None, None)),
    "a bool ignore_index": (TypeError, "ignore_index must be an int",
                            lambda: CF.cross_entropy(x_, t_, None, True)),
    "targets on another device": (RuntimeError, "targets is on meta",
                                  lambda: CF.cross_entropy(x_, t_.to("meta"))),
    "target not a tensor": (TypeError, "must be Tensor", lambda: CF.cross_entropy(x_, [0, 1])),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_arguments_raise(name):
    error, match, call = BAD[name]
    with pytest.raises(error, match=match):
        call()


def test_fake_kernel_refuses_what_the_kernel_refuses():
    def args(x, t, w=None, red="mean"):
        return x, t, w, IGNORE, red, 0.0, "pytorch", 0.0, 0.0, 1.0, False
    with torch._subclasses.fake_tensor.FakeTensorMode():
        x, t = torch.empty(4, 6), torch.zeros(4, dtype=torch.int64)
        with pytest.raises(TypeError, match="int32 or int64"):
            ops.cross_entropy(*args(x, t.float()))
        with pytest.raises(RuntimeError, match="weight must be"):
            ops.cross_entropy(*args(x, t, torch.empty(5)))
        with pytest.raises(RuntimeError, match="unknown reduction"):
            ops.cross_entropy(*args(x, t, red="avg"))
        with pytest.raises(NotImplementedError, match="unsupported dtype"):
            ops.cross_entropy(*args(x.double(), t))
        with pytest.raises(RuntimeError, match="2-D"):
            ops.cross_entropy(*args(x.reshape(2, 2, 6), t))
        loss, lse, rows_z, dlogits = ops.cross_entropy(*args(torch.empty(4, 8)[:, :6], t))
        assert loss.shape == () and lse.shape == rows_z.shape == (4,)
        assert dlogits.shape == (4, 6) and dlogits.stride() == (8, 1)


# ------------------------------------------------------------------ CUDA

def _device_tolerance(x, kw, weight):
    """docs/ACCURACY.md's cross-entropy rule bounded over the call, R·u·κ
    with κ ≤ 1 + 3·max|z| + log C, times the largest coefficient a row's
    terms carry (max w + 2·z_loss·max|lse|)."""
    s, cap = kw.get("logit_scale", 1.0), kw.get("softcap", 0.0)
    z = s * x.double()
    if cap:
        z = cap * torch.tanh(z / cap)
    zmax = float(z.abs().max())
    kappa = 1 + 3 * zmax + math.log(z.shape[1])
    coef = (1.0 if weight is None else float(weight.max())) + \
        2 * kw.get("z_loss", 0.0) * float(torch.logsumexp(z, -1).abs().max())
    grow = 1 + 2 * zmax / cap ** 2 if cap else 1.0
    return 64 * 2.0 ** -24 * kappa * coef * grow * max(s, 1.0)


DEVICE_CASES = {"plain": {}, "smoothing, z_loss": {"label_smoothing": 0.1, "z_loss": 1e-3},
                "megatron, softcap, scale": {"label_smoothing": 0.1, "smoothing": "megatron",
                                             "softcap": 30.0, "logit_scale": 0.5},
                "weights": {"weight": True, "label_smoothing": 0.1}}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(DEVICE_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_kernels_match_the_reference(cuda, dtype, case, reduction):
    kw = dict(DEVICE_CASES[case])
    w = _weight(1000) if kw.pop("weight", False) else None
    x = _logits(dtype, rows=64, classes=1000)[:, :999]  # a row stride
    t = _targets(64, 999, ignored=(3, 40))
    args = (IGNORE, reduction, kw.get("label_smoothing", 0.0), kw.get("smoothing", "pytorch"),
            kw.get("z_loss", 0.0), kw.get("softcap", 0.0), kw.get("logit_scale", 1.0), False)
    w = None if w is None else w[:999].contiguous()
    ref = ops.cross_entropy(x, t, w, *args)
    dev = [o.cpu() for o in ops.cross_entropy(x.to(cuda), t.to(cuda),
                                              None if w is None else w.to(cuda), *args)]
    tol = _device_tolerance(x, kw, w)  # a row's
    eps32 = torch.finfo(torch.float32).eps
    d = float(spec_cross_entropy(x.double(), t, None if w is None else w.double(),
                                 parts=True, **kw)[3])
    g = 1 / d if reduction == "mean" else 1.0
    if reduction == "none":
        loss_tol = tol + eps32 * ref[0].abs()
    else:  # the rows' bounds and R·u·sum|loss_r|, over D for a mean
        rows = ops.cross_entropy(x, t, w, IGNORE, "none", *args[2:])[0]
        loss_tol = g * (tol * t.numel() + 64 * 2.0 ** -24 * float(rows.abs().sum())) + \
            eps32 * ref[0].abs()
    assert ((dev[0] - ref[0]).abs() <= loss_tol).all(), (dev[0], ref[0])
    assert ((dev[1] - ref[1]).abs() <= tol + eps32 * ref[1].abs()).all()
    assert torch.equal(dev[2] == 0, ref[2] == 0)
    grad_tol = g * tol + torch.finfo(dtype).eps * ref[3].double().abs() + torch.finfo(dtype).tiny
    assert ((dev[3].double() - ref[3].double()).abs() <= grad_tol).all()
    assert not dev[3][t == IGNORE].any()


# A device-side assertion leaves the CUDA context unusable: the bad-target
# call runs in a child process.
_BAD_TARGET_SCRIPT = """
import sys, torch, cuact.functional as CF
x = torch.randn(4, 6, device="cuda")
t = torch.tensor([0, 7, -100, 2], device="cuda")  # 7: no such class
loss = CF.cross_entropy(x, t, inplace_backward=sys.argv[1] == "1")
torch.cuda.synchronize()
print("no assertion", flush=True)
"""


@pytest.mark.parametrize("inplace", [False, True])
def test_bad_target_on_the_device_is_a_device_side_assertion(cuda, inplace):
    """As torch's own cross_entropy: a target that is neither a class nor
    ignore_index fails a device-side assertion (the op queues
    torch._assert_async on the kernel's flag), found at the next
    synchronization, not at the call."""
    env = dict(os.environ, CUDA_LAUNCH_BLOCKING="0")
    r = subprocess.run([sys.executable, "-c", _BAD_TARGET_SCRIPT, str(int(inplace))],
                       capture_output=True, text=True, timeout=300, env=env)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "no assertion" not in r.stdout, out
    assert "device-side assert" in out, out


def test_no_host_synchronization(cuda):
    """The call, in place or not, and its backward make no synchronizing call
    (torch's sync debug mode raises on one): the bad-target check stays on
    the device."""
    x, t = _logits(torch.bfloat16, rows=64, classes=1000).to(cuda), _targets(64, 1000).to(cuda)
    w = _weight(1000).to(cuda)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for inplace in (False, True):
            logits, _ = _produced(x)
            loss = CF.cross_entropy(logits, t, w, label_smoothing=0.1,
                                    inplace_backward=inplace)
            loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_inplace_backward_on_the_device(cuda):
    """In place on the device: the out-of-place call's loss and dlogits (the
    kernels are deterministic: the same bits), a row stride kept, the
    producer's gradient the same."""
    wide = _logits(torch.bfloat16, rows=64, classes=1024).to(cuda)
    t = _targets(64, 1000).to(cuda)
    results = []
    for inplace in (False, True):
        padded, s = _produced(wide)
        loss = CF.cross_entropy(padded[:, :1000], t, label_smoothing=0.1, z_loss=1e-4,
                                inplace_backward=inplace)
        after = padded.detach().clone()
        loss.backward()
        results.append((loss.detach(), after, s.grad))
    ref = ops.cross_entropy(wide[:, :1000], t, None, IGNORE, "mean", 0.1, "pytorch", 1e-4, 0.0,
                            1.0, False)
    (loss, after, ds), (loss_i, after_i, ds_i) = results
    assert torch.equal(loss, loss_i) and torch.equal(loss, ref[0]) and torch.equal(ds, ds_i)
    assert torch.equal(after, wide) and torch.equal(after_i[:, :1000], ref[3])
    assert torch.equal(after_i[:, 1000:], wide[:, 1000:])


def test_cuda_graph_capture_and_replay(cuda):
    """The call (the bad-target assertion included) is captured in a CUDA
    graph, in place or not; a replay on new logits gives the eager result."""
    x, t = _logits(torch.float32, rows=32, classes=500).to(cuda), _targets(32, 500).to(cuda)
    x2 = _logits(torch.float32, rows=32, classes=500, seed=9).to(cuda)
    for inplace in (False, True):
        static = x.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the capture
            CF.cross_entropy(static.clone(), t, inplace_backward=inplace)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = CF.cross_entropy(static, t, inplace_backward=inplace)
        static.copy_(x2)
        graph.replay()
        want = x2.clone()
        torch.testing.assert_close(loss, CF.cross_entropy(want, t, inplace_backward=inplace),
                                   rtol=0, atol=0)
        if inplace:
            assert torch.equal(static, want)


def test_rows_of_minus_inf_logits_on_the_device(cuda):
    """-inf rows on the device as on the CPU: a counted row of -inf logits
    gives a NaN loss and NaN gradient row, an ignored one 0 and a zero
    gradient, a target on a -inf class an infinite loss."""
    for case in ("all", "some"):
        for ignore_first in (False, True):
            x, t = _minus_inf_rows(torch.float32, case)
            if ignore_first:
                t[0] = IGNORE
            for reduction in REDUCTIONS:
                args = (None, IGNORE, reduction, 0.0, "pytorch", 0.0, 0.0, 1.0, False)
                ref = ops.cross_entropy(x, t, *args)
                dev = [o.cpu() for o in ops.cross_entropy(x.to(cuda), t.to(cuda), *args)]
                for i in (0, 3):
                    assert torch.equal(dev[i].isnan(), ref[i].isnan()), (case, reduction, i)
                    assert torch.equal(dev[i].isinf(), ref[i].isinf()), (case, reduction, i)
                    torch.testing.assert_close(dev[i], ref[i], rtol=1e-5, atol=1e-6,
                                               equal_nan=True)


def test_runs_on_the_current_stream(cuda):
    x, t = _logits(torch.bfloat16, rows=256, classes=4096).to(cuda), _targets(256, 4096).to(cuda)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        loss = CF.cross_entropy(x, t)
    s.synchronize()
    torch.testing.assert_close(loss.cpu(), CF.cross_entropy(x.cpu(), t.cpu()), rtol=1e-5,
                               atol=1e-5)
