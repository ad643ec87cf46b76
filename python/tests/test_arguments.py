"""torch.nn.functional's argument rules: every call below is made on both
sides; where PyTorch raises, cuact raises the same exception type; where it
computes, cuact computes the same shape, dtype and values (and layout, for
the elementwise functions)."""
import math

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF

x2 = torch.linspace(-3, 3, 12).reshape(3, 4)
ints = torch.tensor([-2, 0, 1, 3])

CALLS = {
    "softmax dim out of range": lambda M: M.softmax(x2, dim=3),
    "log_softmax negative dim out of range": lambda M: M.log_softmax(x2, dim=-3),
    "softmin dim out of range": lambda M: M.softmin(x2, dim=2),
    "softmax dim=True": lambda M: M.softmax(x2, dim=True),
    "softmax dim=1.0": lambda M: M.softmax(x2, dim=1.0),
    "softmax 0-d dim 1": lambda M: M.softmax(torch.tensor(2.0), 1),
    "softmax 0-d": lambda M: M.softmax(torch.tensor(2.0), 0),
    "softmax empty rows": lambda M: M.softmax(torch.empty(3, 0), 0),
    "softmax empty columns": lambda M: M.softmax(torch.empty(3, 0), 1),
    "log_softmax no rows": lambda M: M.log_softmax(torch.empty(0, 5), 1),
    "softmax of integers": lambda M: M.softmax(torch.arange(3), 0),
    "softmax of integers with dtype": lambda M: M.softmax(torch.arange(3), 0, dtype=torch.float32),
    "glu dim out of range": lambda M: M.glu(x2, dim=2),
    "glu odd dimension": lambda M: M.glu(torch.ones(3, 5)),
    "glu scalar": lambda M: M.glu(torch.tensor(1.0)),
    "glu empty": lambda M: M.glu(torch.empty(0, 4)),
    "prelu 2-D weight": lambda M: M.prelu(x2, torch.ones(4, 1)),
    "prelu weight count": lambda M: M.prelu(x2, torch.ones(3)),
    "prelu 0-d weight": lambda M: M.prelu(x2, torch.tensor(0.25)),
    "prelu of integers": lambda M: M.prelu(ints, torch.tensor([0.25])),
    "hardshrink negative lambd": lambda M: M.hardshrink(x2, -1.0),
    "softshrink negative lambd": lambda M: M.softshrink(x2, -1.0),
    "softplus beta 0": lambda M: M.softplus(x2, beta=0.0),
    "softplus beta 0, negative threshold": lambda M: M.softplus(x2, beta=0.0, threshold=-1.0),
    "softplus beta -1": lambda M: M.softplus(x2, beta=-1.0),
    "softplus beta -2, threshold 3": lambda M: M.softplus(x2 * 3, beta=-2.0, threshold=3.0),
    "celu alpha 0": lambda M: M.celu(x2, alpha=0.0),
    "elu negative alpha": lambda M: M.elu(x2, alpha=-1.0),
    "hardtanh min > max": lambda M: M.hardtanh(x2, 2.0, 1.0),
    "gelu bad approximate": lambda M: M.gelu(x2, approximate="x"),
    "dropout p 2": lambda M: M.dropout(x2, 2.0),
    "dropout p -1": lambda M: M.dropout(x2, -1.0),
    "dropout of integers": lambda M: M.dropout(ints, 0.5),
    "rrelu lower > upper": lambda M: M.rrelu(x2, 0.5, 0.1, training=True),
    "elu in place on a leaf": lambda M: M.elu(torch.ones(3, requires_grad=True), inplace=True),
    "threshold without value": lambda M: M.threshold(x2, 0.5),
    "relu of None": lambda M: M.relu(None),
    "relu of a list": lambda M: M.relu([1.0, 2.0]),
    "gelu of a list": lambda M: M.gelu([1.0, 2.0]),
    "softmax of a list": lambda M: M.softmax([1.0, 2.0], 0),
}
# Integer, bool and complex inputs to every elementwise function.
for _name in CF.ELEMENTWISE_FORMS:
    if _name == "threshold" or not hasattr(F, _name):
        continue
    for _dt in (torch.int64, torch.uint8, torch.bool, torch.complex64):
        CALLS[f"{_name} of {_dt}"] = (lambda n, d: lambda M: getattr(M, n)(ints.to(d)))(_name, _dt)
for _dt in (torch.int64, torch.uint8, torch.bool):
    CALLS[f"threshold of {_dt}"] = (lambda d: lambda M: M.threshold(ints.to(d), 0, 5))(_dt)
    CALLS[f"gelu of {_dt}"] = (lambda d: lambda M: M.gelu(ints.to(d)))(_dt)


def _outcome(fn, module):
    try:
        return fn(module), None
    except Exception as e:  # noqa: BLE001 (the type is what is compared)
        return None, e


@pytest.mark.parametrize("name", list(CALLS))
def test_same_rule_as_torch(name):
    theirs, their_error = _outcome(CALLS[name], F)
    ours, our_error = _outcome(CALLS[name], CF)
    if their_error is not None:
        assert our_error is not None, f"torch raises {their_error!r}; cuact returns"
        expected = type(their_error)
        if expected is AttributeError:  # torch's softmax calls input.softmax on a list
            expected = TypeError
        assert isinstance(our_error, expected), (their_error, our_error)
        return
    if "complex" in name:  # cuact's contract: real data only (docs/PYTHON.md); a clear refusal
        assert isinstance(our_error, NotImplementedError), our_error
        return
    assert our_error is None, f"torch computes; cuact raises {our_error!r}"
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    torch.testing.assert_close(ours, theirs, equal_nan=True)


def test_softplus_nonpositive_beta_gradients_match_torch():
    for beta, threshold in ((-1.0, 20.0), (-2.0, 3.0), (0.0, 20.0), (0.0, -1.0)):
        a = (x2 * 3).double().requires_grad_()
        b = a.detach().clone().requires_grad_()
        CF.softplus(a, beta, threshold).sum().backward()
        F.softplus(b, beta, threshold).sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_hardshrink_negative_lambd_gradient_is_the_identity():
    a = x2.clone().requires_grad_()
    CF.hardshrink(a, -0.5).sum().backward()
    assert torch.equal(a.grad, torch.ones_like(a))


def test_mask_on_another_device_is_refused():
    for mask in (torch.zeros(3, 4, device="meta"), torch.zeros(3, 4, dtype=torch.bool,
                                                                device="meta")):
        with pytest.raises(RuntimeError, match="same device"):
            CF.softmax(x2, -1, mask=mask)


def test_operator_refuses_a_mask_on_another_device_when_traced():
    with torch._subclasses.fake_tensor.FakeTensorMode():
        x = torch.empty(3, 4)
        m = torch.empty(3, 4, device="meta")
        with pytest.raises(RuntimeError, match="mask is on meta"):
            torch.ops.cuact.softmax(x, -1, "softmax", 1.0, m, 3, 1, 0, 0)


def test_dropout_without_training_returns_the_input():
    for call in (lambda: CF.dropout(x2, 0.5, training=False), lambda: CF.dropout(x2, 0.0),
                 lambda: CF.dropout(x2, 0.0, inplace=True)):
        assert call() is x2
    assert cuact_module_eval_dropout(x2) is x2


def cuact_module_eval_dropout(x):
    import cuact.nn
    return cuact.nn.Dropout(0.3).eval()(x)


LAYOUTS = {
    "channels_last": lambda t: t.to(memory_format=torch.channels_last),
    "transposed": lambda t: t.transpose(1, 3),
    "sliced": lambda t: t[:, :, ::2],  # not dense: computed on a contiguous copy
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("fn", ["relu", "gelu", "elu", "sigmoid", "rrelu", "dropout"])
def test_elementwise_functions_keep_a_dense_layout(fn, layout):
    x = LAYOUTS[layout](torch.randn(2, 3, 4, 5, dtype=torch.float64))
    if fn == "dropout":
        ours = CF.dropout(x, 0.5, True)
        assert bool(((ours == 0) | (ours == 2 * x)).all())  # kept values scaled by 2
    else:
        ours = getattr(CF, fn)(x)
        torch.testing.assert_close(ours, getattr(F, fn)(x))
    if layout != "sliced":
        assert ours.stride() == x.stride()


def test_learned_mask_gets_its_gradient():
    """softmax(x + mask)'s gradient in the mask, summed over its broadcast
    dimensions, as PyTorch's for x + mask."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    for shape in [(6,), (5, 6), (1, 3, 1, 6), (2, 1, 5, 6), (3, 5, 1)]:
        for ours_fn, theirs_fn, sign in ((CF.softmax, F.softmax, 1), (CF.log_softmax,
                                         F.log_softmax, 1), (CF.softmin, F.softmin, -1)):
            m1 = torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_()
            m2 = m1.detach().clone().requires_grad_()
            xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
            dy = torch.randn(x.shape, generator=g, dtype=torch.float64)
            ours_fn(xa, -1, scale=0.5, mask=m1).backward(dy)
            # cuact's softmin with a mask is softmax(-0.5 x + m), PyTorch's softmin(0.5 x - m)
            theirs_fn(xb * 0.5 + sign * m2, -1).backward(dy)
            torch.testing.assert_close(m1.grad, m2.grad)
            torch.testing.assert_close(xa.grad, xb.grad)


def test_masked_softmax_gradient_at_hidden_columns_is_zero():
    x = torch.randn(2, 4, dtype=torch.float64)
    mask = torch.tensor([0.0, -math.inf, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    CF.softmax(x, -1, mask=mask).pow(2).sum().backward()
    assert mask.grad[1] == 0 and mask.grad.isfinite().all()


# ------------------------------------------------------------------ fp8 outputs
# No torch.nn.functional counterpart: each call's exception type is the one the
# package uses for the same kind of mistake (TypeError for a wrong dtype of a
# tensor argument, RuntimeError for a wrong device, shape or parameter,
# NotImplementedError for an unsupported dtype, ValueError for a bad choice).

xf = torch.linspace(-3, 3, 12).reshape(3, 4)
E4M3 = torch.float8_e4m3fn
FP8_CALLS = {
    "scale of float64": (TypeError, "must be float32",
                         lambda: CF.activation_fp8(xf, "gelu", scale=torch.ones(1).double())),
    "scale of bfloat16": (TypeError, "must be float32",
                          lambda: CF.bias_activation_fp8(xf, None, scale=torch.ones(1).bfloat16())),
    "scale a Python float": (TypeError, "scale must be a float32 Tensor",
                             lambda: CF.activation_fp8(xf, "gelu", scale=2.0)),
    "scale of two elements": (RuntimeError, "one element",
                              lambda: CF.activation_fp8(xf, "gelu", scale=torch.ones(2))),
    "scale on another device": (RuntimeError, "scale is on meta",
                                lambda: CF.activation_fp8(xf, "gelu",
                                                          scale=torch.ones(1, device="meta"))),
    "margin with a given scale": (RuntimeError, "current recipe",
                                  lambda: CF.activation_fp8(xf, "gelu", scale=torch.ones(1),
                                                            margin=1)),
    "power_of_two with a given scale": (RuntimeError, "current recipe",
                                        lambda: CF.glu_fp8(xf, scale=torch.ones(1),
                                                           power_of_two=True)),
    "margin -1": (RuntimeError, "margin must be in", lambda: CF.activation_fp8(xf, "gelu",
                                                                               margin=-1)),
    "margin 65": (RuntimeError, "margin must be in", lambda: CF.swiglu_fp8(xf, margin=65)),
    "margin 2^40": (RuntimeError, "margin must be in", lambda: CF.activation_fp8(xf, "relu",
                                                                                 margin=2**40)),
    "output float16": (NotImplementedError, "unsupported output dtype",
                       lambda: CF.activation_fp8(xf, "gelu", torch.float16)),
    "output float8_e4m3fnuz": (NotImplementedError, "unsupported output dtype",
                               lambda: CF.activation_backward_fp8(xf, xf, "gelu",
                                                                  torch.float8_e4m3fnuz)),
    "output float8_e8m0fnu": (NotImplementedError, "unsupported output dtype",
                              lambda: CF.bias_activation_backward_fp8(xf, None, xf, "gelu",
                                                                      torch.float8_e8m0fnu)),
    "integer input": (NotImplementedError, "not implemented for",
                      lambda: CF.activation_fp8(ints, "relu")),
    "fp8 input": (NotImplementedError, "unsupported dtype",
                  lambda: CF.activation_fp8(xf.to(E4M3), "relu")),
    "unknown activation": (ValueError, "unknown activation",
                           lambda: CF.activation_fp8(xf, "nope")),
    "grad_output of another shape": (RuntimeError, "shape",
                                     lambda: CF.activation_backward_fp8(xf, xf[:2], "gelu")),
    "grad_output of another dtype": (TypeError, "the gradient is",
                                     lambda: CF.activation_backward_fp8(xf, xf.double(), "gelu")),
    "dy of another dtype (dact + dbias)": (TypeError, "dy is",
                                           lambda: CF.bias_activation_backward_fp8(
                                               xf, torch.ones(4), xf.half(), "gelu")),
    "bias of the wrong size": (RuntimeError, "bias must be 1-D",
                               lambda: CF.bias_activation_fp8(xf, torch.ones(3))),
    "bias of float64 for float32 data": (TypeError, "bias is",
                                         lambda: CF.bias_activation_fp8(xf, torch.ones(
                                             4, dtype=torch.float64))),
    "dropout p 2": (ValueError, "dropout probability", lambda: CF.bias_activation_fp8(xf, p=2.0)),
    "glu odd dimension": (RuntimeError, "Halving dimension must be even",
                          lambda: CF.glu_fp8(torch.ones(3, 5))),
    "glu dim out of range": (IndexError, "Dimension out of range",
                             lambda: CF.swiglu_fp8(xf, dim=2)),
    "gelu has no backward from the output": (NotImplementedError, "no backward from the output",
                                             lambda: CF.activation_backward_fp8(
                                                 xf, xf, "gelu", from_output=True)),
    "bad activation parameter": (RuntimeError, "invalid_parameter",
                                 lambda: CF.activation_fp8(xf, "softshrink", lambd=-1.0)),
}


@pytest.mark.parametrize("name", list(FP8_CALLS))
def test_fp8_argument_rules(name):
    error, match, call = FP8_CALLS[name]
    with pytest.raises(error, match=match):
        call()


OPS_FP8 = torch.ops.cuact


def test_fp8_operators_take_dense_tensors_and_the_functions_make_them():
    """The operators refuse a non-contiguous input, as every cuact operator;
    the functions pass a dense input in its memory order and copy others."""
    kind, params = CF.activation_params("gelu")
    sliced = torch.linspace(-3, 3, 24).reshape(4, 6)[:, ::2]
    with pytest.raises(RuntimeError, match="must be contiguous"):
        OPS_FP8.activation_fp8(sliced, kind, params, E4M3, None, 0, False)
    with pytest.raises(RuntimeError, match="must be contiguous"):
        OPS_FP8.activation_backward_fp8(sliced.contiguous(), sliced, kind, params, E4M3, None, 0,
                                        False)
    with pytest.raises(RuntimeError, match="must be contiguous"):
        OPS_FP8.glu_fp8(sliced.t(), kind, params, True, E4M3, None, 0, False)
    a = CF.activation_fp8(sliced, "gelu")
    b = CF.activation_fp8(sliced.contiguous(), "gelu")
    assert torch.equal(a.data.double(), b.data.double()) and torch.equal(a.scale, b.scale)


def test_fp8_operators_refuse_bad_arguments_when_traced():
    """The fake kernels check what the kernels check before anything runs."""
    kind, params = CF.activation_params("gelu")
    with torch._subclasses.fake_tensor.FakeTensorMode():
        x = torch.empty(3, 4)
        with pytest.raises(NotImplementedError, match="unsupported output dtype"):
            OPS_FP8.activation_fp8(x, kind, params, torch.float16, None, 0, False)
        with pytest.raises(TypeError, match="must be float32"):
            OPS_FP8.activation_fp8(x, kind, params, E4M3, torch.empty(1, dtype=torch.float64), 0,
                                   False)
        with pytest.raises(RuntimeError, match="scale is on meta"):
            OPS_FP8.glu_fp8(x, kind, params, True, E4M3, torch.empty(1, device="meta"), 0, False)


def test_raw_backward_ops_refuse_a_gradient_of_another_shape():
    """A shorter dy would be read past its end: every backward op refuses it."""
    nan7 = [float("nan")] * 7
    x, dy = torch.randn(4, 8), torch.randn(2, 8)
    calls = [
        lambda: torch.ops.cuact.activation_backward(x, dy, "relu", nan7),
        lambda: torch.ops.cuact.activation_backward_from_output(x, dy, "relu", nan7),
        lambda: torch.ops.cuact.bias_activation_backward(x, None, dy, "relu", nan7, 0.0, None),
        lambda: torch.ops.cuact.prelu_backward(x, torch.randn(8), dy),
        lambda: torch.ops.cuact.rrelu_backward(x, dy, 0.125, 0.25, False, None),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="shape"):
            call()
