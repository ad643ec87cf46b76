"""The MoE GLU over expert rows (gated's, swiglu's and clamped_swiglu's
counts and offsets; the moe_glu operators' counts and offsets): masked
buffers [E, C, 2d] with counts [E], grouped rows with offsets [E + 1],
against gpt-oss's clamped SwiGLU written here in plain PyTorch and applied
to the valid rows only (zeros elsewhere, in the value and the gradients of
the input and the routing weight); the CPU's refusal of bad counts and
offsets, and of bad arguments (the fake kernels' too); opcheck,
torch.compile, vmap. The CUDA half (kernels against the CPU reference, the
device-side assertion) skips without a GPU (fails with CUACT_REQUIRE_GPU=1)."""
import os
import subprocess
import sys

import pytest
import torch

import cuact.functional as CF
import cuact.nn
from test_moe_glu import (_check, _dy, _f32, _run, _w, _x, _gelu, assert_dweight_near_reference,
                          assert_near_reference, gpt_oss_swiglu, gpt_oss_swiglu_interleaved,
                          spec_glu)

ops = torch.ops.cuact
E, C, D = 4, 5, 6  # experts, capacity, d
ALPHA = _f32(1.702)


def masked_rows(counts, capacity):
    """[E, C] bool: expert e's first counts[e] rows."""
    return torch.arange(capacity) < counts[:, None]


def grouped_rows(offsets, shape):
    """The rows' shape in bool: rows offsets[0] up to offsets[-1] (of all
    leading dimensions, in order)."""
    r = torch.arange(shape.numel()).reshape(shape)
    return (r >= offsets[0]) & (r < offsets[-1])


def expert_swiglu(x, w, valid, interleave=0):
    """gpt-oss's clamped SwiGLU (times the routing weight) on the valid rows,
    zeros on the others."""
    y = (gpt_oss_swiglu_interleaved if interleave else gpt_oss_swiglu)(x, ALPHA)
    if w is not None:
        y = y * w[..., None]
    return torch.where(valid[..., None], y, 0)


def _assert_zero_outside(valid, *results):
    """Each result (y, dx: the rows' shape and more; dweight: the rows') is
    exactly zero on the rows `valid` leaves out, and not all zero on the
    valid ones (where there are some)."""
    for t in results:
        if t is None:
            continue
        rows = t.reshape(*valid.shape, -1)
        assert torch.equal(rows[~valid], torch.zeros_like(rows[~valid]))
        assert not valid.any() or rows[valid].any()


def _counts(case, dtype=torch.int32):
    """Counts of E experts of capacity C."""
    if case == "random, with 0 and C":
        g = torch.Generator().manual_seed(4)
        c = torch.randint(0, C + 1, (E,), generator=g)
        c[1], c[3] = 0, C
    elif case == "one expert holds every token":
        c = torch.tensor([0, 0, C, 0])
    else:  # no tokens
        c = torch.zeros(E, dtype=torch.int64)
    return c.to(dtype)


COUNT_CASES = ["random, with 0 and C", "one expert holds every token", "no tokens"]
WEIGHTS = {"unweighted": None, "float32 weight": torch.float32, "input's weight": "input"}


def _weight(kind, shape, dtype):
    wt = WEIGHTS[kind]
    return None if wt is None else _w(shape, dtype if wt == "input" else wt)


@pytest.mark.parametrize("interleave", [0, 1])
@pytest.mark.parametrize("weight", list(WEIGHTS))
@pytest.mark.parametrize("case", COUNT_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_masked_matches_gpt_oss(dtype, case, weight, interleave):
    """y, dx and dweight of a masked buffer against the formula on the
    valid rows (int32 and int64 counts), zeros on the rest."""
    x = _x(dtype, rows=E * C, d=D).reshape(E, C, 2 * D)
    w = _weight(weight, (E, C), dtype)
    for ids in (torch.int32, torch.int64):
        counts = _counts(case, ids)
        valid = masked_rows(counts, C)
        _check(lambda v, u: CF.clamped_swiglu(v, weight=u, interleave=interleave, counts=counts),
               lambda v, u: expert_swiglu(v, u, valid, interleave), x, w, 7.0)
        _assert_zero_outside(valid, *_run(lambda v, u: CF.clamped_swiglu(
            v, weight=u, interleave=interleave, counts=counts), x, w, _dy((E, C, D), dtype)))


OFFSET_CASES = {
    "an empty expert and rows out of any": [3, 3, 8, 12],
    "one expert holds every row": [0, 14],
    "no rows": [5, 5, 5],
}


@pytest.mark.parametrize("interleave", [0, 1])
@pytest.mark.parametrize("weight", list(WEIGHTS))
@pytest.mark.parametrize("case", list(OFFSET_CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_grouped_matches_gpt_oss(dtype, case, weight, interleave):
    """Grouped rows of a [2, 7, 2d] input (every leading dimension a row):
    the valid rows offsets[0] up to offsets[E], int32 and int64 offsets."""
    x = _x(dtype, rows=14, d=D, seed=3).reshape(2, 7, 2 * D)
    w = _weight(weight, (2, 7), dtype)
    for ids in (torch.int32, torch.int64):
        offsets = torch.tensor(OFFSET_CASES[case], dtype=ids)
        valid = grouped_rows(offsets, x.shape[:-1])
        _check(lambda v, u: CF.clamped_swiglu(v, weight=u, interleave=interleave,
                                              offsets=offsets),
               lambda v, u: expert_swiglu(v, u, valid, interleave), x, w, 7.0)
        _assert_zero_outside(valid, *_run(lambda v, u: CF.clamped_swiglu(
            v, weight=u, interleave=interleave, offsets=offsets), x, w, _dy((2, 7, D), dtype)))


def test_other_gates_and_swiglu():
    """gelu gated second with clamps and an offset (SPEC's formula), and the
    unclamped swiglu, on masked rows; the same rows of a call without expert
    rows, bit for bit."""
    x, w = _x(torch.float32, rows=E * C, d=D, spread=2.5).reshape(E, C, 2 * D), _w((E, C),
                                                                                   torch.float32)
    counts = _counts(COUNT_CASES[0])
    valid = masked_rows(counts, C)
    _check(lambda v, u: CF.gated(v, "gelu", gate="second", limit=3.0, offset=-0.5, weight=u,
                                 counts=counts),
           lambda v, u: torch.where(valid[..., None], spec_glu(v, _gelu, False, 3.0, -0.5, u), 0),
           x, w, 3.0)
    y = CF.swiglu(x, weight=w, counts=counts)
    assert torch.equal(y[valid], CF.swiglu(x, weight=w)[valid])
    _assert_zero_outside(valid, y)


def test_dim_module_and_empty_rows():
    """`dim` anywhere (the rows: the input's shape without it); cuact.nn's
    modules pass counts and offsets on; d = 0 gives zeros for dweight."""
    x, w = _x(torch.float32, rows=E * C, d=D).reshape(E, C, 2 * D), _w((E, C), torch.float32)
    counts = _counts(COUNT_CASES[0])
    y = CF.clamped_swiglu(x, weight=w, counts=counts)
    assert torch.equal(CF.clamped_swiglu(x.movedim(-1, 0), 0, weight=w, counts=counts),
                       y.movedim(-1, 0))
    assert torch.equal(cuact.nn.ClampedSwiGLU()(x, w, counts=counts), y)
    offsets = torch.tensor([2, 9])
    assert torch.equal(cuact.nn.SwiGLU()(x, offsets=offsets), CF.swiglu(x, offsets=offsets))
    _, dx, dw = _run(lambda v, u: CF.clamped_swiglu(v, weight=u, counts=counts),
                     torch.empty(E, C, 0), w, torch.empty(E, C, 0))
    assert dx.shape == (E, C, 0) and torch.equal(dw, torch.zeros_like(w))


def test_gradcheck_in_float64():
    """x and the weight of a masked buffer and of grouped rows, away from the
    kinks (the float64 path of the CPU)."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(3, 2, 8, generator=g, dtype=torch.float64) * 6 - 3
    x = torch.where((x.abs() - 2).abs() < 0.05, x + 0.1, x).requires_grad_()
    w = _w((3, 2), torch.float64).requires_grad_()
    counts, offsets = torch.tensor([1, 0, 2]), torch.tensor([1, 3, 5], dtype=torch.int32)
    assert torch.autograd.gradcheck(
        lambda v, u: CF.clamped_swiglu(v, limit=2.0, weight=u, counts=counts), (x, w))
    assert torch.autograd.gradcheck(
        lambda v, u: CF.clamped_swiglu(v, limit=2.0, weight=u, offsets=offsets, interleave=1),
        (x, w))


def test_vmap_and_torch_func_grad():
    """Expert rows under vmap: one call per batch entry, with shared or
    batched counts; the values and gradients of a loop over the entries."""
    x = torch.stack([_x(torch.float32, rows=E * C, d=D, seed=s).reshape(E, C, 2 * D)
                     for s in range(3)])
    w = torch.stack([_w((E, C), torch.float32, seed=s) for s in range(3)])
    counts = torch.stack([_counts(c) for c in COUNT_CASES])

    def f(v, u, c):
        return CF.clamped_swiglu(v, weight=u, counts=c)

    grad = torch.func.grad(lambda v, u, c: f(v, u, c).pow(2).sum(), argnums=(0, 1))
    for in_dims, cs in (((0, 0, 0), counts), ((0, 0, None), counts[0])):
        entries = [(x[i], w[i], cs[i] if in_dims[2] == 0 else cs) for i in range(3)]
        assert torch.equal(torch.func.vmap(f, in_dims)(x, w, cs),
                           torch.stack([f(*e) for e in entries]))
        gx, gw = torch.func.vmap(grad, in_dims)(x, w, cs)
        assert torch.equal(gx, torch.stack([grad(*e)[0] for e in entries]))
        assert torch.equal(gw, torch.stack([grad(*e)[1] for e in entries]))
    offsets = torch.tensor([2, 6, 13])
    kind, params = CF.activation_params("silu", beta=1.702)
    dy = torch.stack([_dy((E, C, D), torch.float32, seed=s) for s in range(3)])
    args = (kind, params, True, 7.0, 1.0, True, 0, None, offsets)
    got = torch.func.vmap(lambda v, u, g: ops.moe_glu_backward(v, u, g, *args))(x, w, dy)
    for i in range(3):
        want = ops.moe_glu_backward(x[i], w[i], dy[i], *args)
        assert torch.equal(got[0][i], want[0]) and torch.equal(got[1][i], want[1])


# ------------------------------------------------------------------ the operators

def _op_samples(dtype):
    """(operator, args) with expert rows: masked and grouped, int32 and
    int64, weighted or not, both layouts, dweight asked for or not."""
    silu = CF.activation_params("silu", beta=1.702)
    wide = torch.float64 if dtype == torch.float64 else torch.float32
    x = _x(dtype, rows=6, d=4).reshape(3, 2, 8).requires_grad_()
    w = _w((3, 2), wide).requires_grad_()
    dy = _dy((3, 2, 4), dtype)
    counts = torch.tensor([2, 0, 1], dtype=torch.int32)
    offsets = torch.tensor([1, 3, 3, 5])
    return [
        (ops.moe_glu, (x, w, *silu, True, 7.0, 1.0, 0, counts)),
        (ops.moe_glu, (x, None, *silu, True, 7.0, 1.0, 1, counts.long())),
        (ops.moe_glu, (x, w, *silu, False, 2.0, 0.0, 2, None, offsets)),
        (ops.moe_glu_backward, (x.detach(), w.detach(), dy, *silu, True, 7.0, 1.0, True, 0,
                                counts)),
        (ops.moe_glu_backward, (x.detach(), w.detach(), dy, *silu, True, 7.0, 1.0, False, 1,
                                None, offsets.int())),
        (ops.moe_glu_backward, (x.detach(), None, dy, *silu, True, 7.0, 1.0, False, 0, None,
                                offsets)),
    ]


OP_CASES = [(dt, i) for dt in (torch.float32, torch.bfloat16, torch.float64)
            for i in range(len(_op_samples(torch.float32)))]


@pytest.mark.parametrize("dtype,index", OP_CASES, ids=[f"{dt}-{i}" for dt, i in OP_CASES])
def test_opcheck(dtype, index):
    op, args = _op_samples(dtype)[index]
    torch.library.opcheck(op, args)


class MaskedExperts(torch.nn.Module):
    """An MoE layer's experts over a masked buffer [E, C, d]: each expert's
    up projection, gpt-oss's clamped SwiGLU (its interleaved layout) scaled
    by the tokens' routing weights on the valid rows, the down projection."""

    def __init__(self, experts=E, d=8, ffn=6):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.up = torch.nn.Parameter(torch.randn(experts, d, 2 * ffn, generator=g))
        self.down = torch.nn.Parameter(torch.randn(experts, ffn, d, generator=g) / 4)

    def forward(self, x, routing, counts):
        h = CF.clamped_swiglu(torch.bmm(x, self.up), weight=routing, interleave=1, counts=counts)
        return torch.bmm(h, self.down)


def test_compiled_masked_experts_match_eager():
    """torch.compile(fullgraph=True): no graph break; the output and the
    gradients of the parameters, the buffer and the routing weights as
    eager's, zeros on the rows past the counts (a formula of the test's
    own on the valid rows)."""
    torch._dynamo.reset()
    model = MaskedExperts()
    g = torch.Generator().manual_seed(9)
    x, routing = torch.randn(E, C, 8, generator=g), torch.rand(E, C, generator=g)
    counts = _counts(COUNT_CASES[0])
    valid = masked_rows(counts, C)
    results = []
    for fn in (model, torch.compile(model, fullgraph=True)):
        model.zero_grad()
        xi, ri = x.clone().requires_grad_(), routing.clone().requires_grad_()
        y = fn(xi, ri, counts)
        y.pow(2).sum().backward()
        results.append([y.detach(), xi.grad, ri.grad] + [p.grad.clone()
                                                          for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    _assert_zero_outside(valid, *results[0][:3])
    h = expert_swiglu(torch.bmm(x, model.up.detach()), routing, valid, interleave=1)
    torch.testing.assert_close(results[0][0], torch.bmm(h, model.down.detach()))


# ------------------------------------------------------------------ refusals

x3 = _x(torch.float32, rows=E * C, d=2).reshape(E, C, 4)
x2 = x3.reshape(E * C, 4)
counts_ = torch.tensor([1, 2, 3, 4], dtype=torch.int32)

# The values: checked when the CPU runs (the device flags them instead).
BAD_VALUES = {
    "negative count": ("counts", [-1, 2, 0, 1], r"counts\[0\] = -1 is outside \[0, 5\] "
                                                r"\(expert 0's rows in a capacity of 5\)"),
    "count past the capacity": ("counts", [0, 2, 6, 1], r"counts\[2\] = 6 is outside \[0, 5\]"),
    "int64 count past int32": ("counts", [0, 2 ** 40, 0, 1],
                               r"counts\[1\] = 1099511627776 is outside"),
    "negative first offset": ("offsets", [-2, 3, 5], r"offsets\[0\] = -2 is outside \[0, 20\]"),
    "last offset past the rows": ("offsets", [0, 3, 21], r"offsets\[2\] = 21 is past the 20 rows"),
    "decreasing offsets": ("offsets", [0, 6, 4, 10],
                           r"offsets\[2\] = 4 is below offsets\[1\] = 6 \(expert 1's rows"),
}


@pytest.mark.parametrize("ids", [torch.int32, torch.int64], ids=str)
@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_bad_values_raise_on_the_cpu(name, ids):
    """Forward and backward, float32 and float64, a RuntimeError naming the
    expert and the value."""
    what, values, match = BAD_VALUES[name]
    if ids == torch.int32 and max(values) > 2 ** 31 - 1:
        pytest.skip("no such int32")
    t = torch.tensor(values, dtype=ids)
    kind, params = CF.activation_params("silu", beta=1.702)
    for x in (x3, x3.double()):
        args = dict(counts=t) if what == "counts" else dict(offsets=t)
        with pytest.raises(RuntimeError, match=r"cuact.moe_glu: " + match):
            CF.clamped_swiglu(x, **args)
        with pytest.raises(RuntimeError, match=r"cuact.moe_glu_backward: " + match):
            ops.moe_glu_backward(x, None, torch.zeros(E, C, 2, dtype=x.dtype), kind, params,
                                 True, 7.0, 1.0, False, 0, *(t, None) if what == "counts"
                                 else (None, t))


def _many_experts():
    return CF.swiglu(torch.empty(1025, 1, 4), counts=torch.zeros(1025, dtype=torch.int32))


# (error, match, call, whether the fake kernels check it too)
BAD = {
    "counts and offsets": (RuntimeError, "counts and offsets are both given; a call takes one",
                           lambda: CF.swiglu(x3, counts=counts_, offsets=torch.tensor([0, 1])),
                           True),
    "float counts": (TypeError, "counts is .*[Ff]loat.*; it takes int32 or int64",
                     lambda: CF.swiglu(x3, counts=counts_.float()), True),
    "bool offsets": (TypeError, "offsets is .*[Bb]ool.*; it takes int32 or int64",
                     lambda: CF.swiglu(x2, offsets=torch.tensor([True, True])), True),
    "counts of the wrong length": (RuntimeError, r"counts of 3 experts take an input \[3, "
                                                 r"capacity, 2d\], got shape \[4, 5, 4\]",
                                   lambda: CF.swiglu(x3, counts=counts_[:3]), True),
    "counts of a 2-D input": (RuntimeError, r"counts of 4 experts take an input \[4, capacity, "
                                            r"2d\], got shape \[20, 4\]",
                              lambda: CF.swiglu(x2, counts=counts_), True),
    "2-D counts": (RuntimeError, r"counts must be 1-D \(\[experts\]\), got shape \[4, 1\]",
                   lambda: CF.swiglu(x3, counts=counts_[:, None]), True),
    "one offset": (RuntimeError, "offsets must hold experts \\+ 1 >= 2 entries, got 1",
                   lambda: CF.swiglu(x2, offsets=torch.tensor([3])), True),
    "no experts": (RuntimeError, "expert rows need experts > 0",
                   lambda: CF.swiglu(torch.empty(0, C, 4), counts=counts_[:0]), True),
    "1025 masked experts": (NotImplementedError, "masked expert rows take at most 1024 experts",
                            _many_experts, True),
    "counts on another device": (RuntimeError, "counts is on meta, the input on cpu",
                                 lambda: CF.swiglu(x3, counts=counts_.to("meta")), True),
    "counts not a tensor": (TypeError, "counts must be a Tensor, not list",
                            lambda: CF.swiglu(x3, counts=[1, 2, 3, 4]), True),
    "a gate the MoE forms are not built for": (
        NotImplementedError, "built for the gates", lambda: CF.gated(x3, "tanh", counts=counts_),
        False),
}


@pytest.mark.parametrize("fake", [False, True], ids=["kernels", "fake kernels"])
@pytest.mark.parametrize("name", list(BAD))
def test_bad_arguments_raise(name, fake):
    error, match, call, checked_by_fake = BAD[name]
    if fake and not checked_by_fake:
        pytest.skip("the fake kernels leave the gate to the kernels")
    if not fake:
        with pytest.raises(error, match=match):
            call()
        return
    with torch._subclasses.fake_tensor.FakeTensorMode(allow_non_fake_inputs=True):
        with pytest.raises(error, match=match):
            call()


def test_fake_kernels_give_the_shapes():
    kind, params = CF.activation_params("silu")
    with torch._subclasses.fake_tensor.FakeTensorMode():
        x, w, c = torch.empty(E, C, 8).bfloat16(), torch.empty(E, C), torch.empty(E).int()
        assert ops.moe_glu(x, w, kind, params, True, 7.0, 1.0, 0, c).shape == (E, C, 4)
        dx, dw = ops.moe_glu_backward(x, w, torch.empty(E, C, 4).bfloat16(), kind, params, True,
                                      7.0, 1.0, True, 0, None, torch.empty(3).long())
        assert dx.shape == x.shape and dx.dtype == torch.bfloat16
        assert dw.shape == (E, C) and dw.dtype == torch.float32


# ------------------------------------------------------------------ CUDA

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_kernels_match_the_reference(cuda, dtype):
    """y, dx and dweight of the device against the CPU reference on masked
    and grouped rows (int32 and int64 entries, weighted and not, both
    layouts), each within test_moe_glu's tolerances; zeros outside the valid
    rows."""
    silu = CF.activation_params("silu", beta=1.702)
    x = _x(dtype, rows=E * 40, d=32).reshape(E, 40, 64)
    dy = _dy((E, 40, 32), dtype)
    counts = torch.tensor([0, 40, 17, 1])
    offsets = torch.tensor([9, 9, 70, 150, 151])
    for ids in (torch.int32, torch.int64):
        for experts in ((counts.to(ids), None), (None, offsets.to(ids))):
            valid = (masked_rows(counts, 40) if experts[0] is not None
                     else grouped_rows(offsets, x.shape[:-1]))
            for w in (None, _w((E, 40), torch.float32)):
                for interleave in (0, 1):
                    args = (*silu, True, 7.0, 1.0)
                    ref = [ops.moe_glu(x, w, *args, interleave, *experts),
                           *ops.moe_glu_backward(x, w, dy, *args, True, interleave, *experts)]
                    on = [None if t is None else t.to(cuda) for t in experts]
                    wd = None if w is None else w.to(cuda)
                    dev = [ops.moe_glu(x.to(cuda), wd, *args, interleave, *on),
                           *ops.moe_glu_backward(x.to(cuda), wd, dy.to(cuda), *args, True,
                                                 interleave, *on)]
                    dev = [t.cpu() for t in dev]
                    assert_near_reference(dev[0], ref[0])
                    assert_near_reference(dev[1], ref[1])
                    _assert_zero_outside(valid, dev[0], dev[1])
                    if w is not None:
                        terms = (ops.moe_glu(x.double(), None, *args, interleave)
                                 * dy.double()).abs().sum(-1)
                        assert_dweight_near_reference(dev[2], ref[2], terms)
                        _assert_zero_outside(valid, dev[2])


def test_no_host_synchronization(cuda):
    """int64 counts and offsets are made int32 on the device, and the bad
    value check stays there: a call and its backward make no synchronizing
    call (torch's sync debug mode raises on one)."""
    x = _x(torch.bfloat16, rows=E * C, d=8).reshape(E, C, 16).to(cuda).requires_grad_()
    w = _w((E, C), torch.float32).to(cuda).requires_grad_()
    experts = (dict(counts=_counts(COUNT_CASES[0], torch.int64).to(cuda)),
               dict(offsets=torch.tensor([1, 4, 19], device=cuda)))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for kw in experts:
            CF.clamped_swiglu(x, weight=w, **kw).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


# A device-side assertion leaves the CUDA context unusable: the bad call runs
# in a child process.
_BAD_COUNT_SCRIPT = """
import sys, torch, cuact.functional as CF
x = torch.randn(3, 4, 8, device="cuda")
ids = torch.tensor({ids}, device="cuda")
y = CF.swiglu(x, **{{sys.argv[1]: ids}})
torch.cuda.synchronize()
print("no assertion", flush=True)
"""


@pytest.mark.parametrize("what,ids", [("counts", [0, 5, 1]), ("counts", [0, 2 ** 40, 1]),
                                      ("offsets", [0, 13]), ("offsets", [0, 9, 4, 10])])
def test_bad_values_on_the_device_are_a_device_side_assertion(cuda, what, ids):
    """As cross_entropy's bad targets: the kernels read the value clamped, the
    op's asynchronous assertion on the call's flag fails at the next
    synchronization (an int64 value past int32 too: no wrap to a valid one)."""
    env = dict(os.environ, CUDA_LAUNCH_BLOCKING="0")
    r = subprocess.run([sys.executable, "-c", _BAD_COUNT_SCRIPT.format(ids=ids), what],
                       capture_output=True, text=True, timeout=300, env=env)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "no assertion" not in r.stdout, out
    assert "device-side assert" in out, out
