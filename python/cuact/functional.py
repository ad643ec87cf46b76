"""cuact's operations with torch.nn.functional's names, arguments and defaults.

Every function takes CUDA tensors (float32, float16, bfloat16: cuact's kernels
on the current stream) or CPU tensors (also float64: cuact's double-precision
reference, exact and slow), and follows torch.nn.functional's argument rules
and exception types. Elementwise functions keep a dense input's memory layout
(channels_last too); the others return contiguous results (softmax reads 2-D
rows with a row stride in place). `inplace=True` writes the result into the
input and returns it; its gradient is the out-of-place one (see _in_place).
Integer inputs: relu, relu6, hardtanh and threshold compute them with
PyTorch's integer kernels (exact); sigmoid, tanh, softsign and tanhshrink
take them as the default float dtype, as PyTorch does; the rest raise
NotImplementedError, as PyTorch's do. cross_entropy takes float32, float16
and bfloat16 logits only (also on the CPU) and returns a float32 loss.

The *_fp8 functions write their result as fp8 codes with one scale per
tensor (a Float8Output: data, scale, amax, scale_inv), the *_block_fp8 ones
(and mxfp8) with one scale per block of a row (a BlockScaledFloat8: data,
scales, amax), the *_nvfp4 ones (and nvfp4) as NVFP4's e2m1 codes with e4m3
block scales and a tensor scale (a BlockScaledFloat4); they carry no
gradient, and refuse an input that requires grad while grad mode is on.
"""
import math
import operator
import typing
import warnings

import torch
import torch.autograd.forward_ad as _fwad
import torch.nn.functional as _torch_F

from . import _ops
from ._autograd import CrossEntropyInplace, call, refuse_gradient, saves_output

_NAN = math.nan

# The activations: cuact's kind name -> {keyword: (cuact field, default)}.
# cuact::Activation's fields, in the order the operators take them.
_FIELDS = ("alpha", "beta", "lambda", "lower", "upper", "cutoff", "value")
ACTIVATIONS = {
    "identity": {}, "relu": {}, "relu6": {},
    "hardtanh": {"min_val": ("lower", -1.0), "max_val": ("upper", 1.0)},
    "leaky_relu": {"negative_slope": ("alpha", 0.01)},
    "elu": {"alpha": ("alpha", 1.0)},
    "selu": {},
    "celu": {"alpha": ("alpha", 1.0)},
    "gelu": {}, "gelu_tanh": {}, "quick_gelu": {}, "sigmoid": {}, "tanh": {},
    "silu": {"beta": ("beta", 1.0)},
    "mish": {},
    "softplus": {"beta": ("beta", 1.0), "threshold": ("cutoff", 20.0)},
    "log_sigmoid": {}, "hardsigmoid": {}, "hardswish": {}, "softsign": {}, "tanhshrink": {},
    "hardshrink": {"lambd": ("lambda", 0.5)},
    "softshrink": {"lambd": ("lambda", 0.5)},
    "threshold": {"threshold": ("cutoff", 0.0), "value": ("value", 0.0)},
}
_ALIASES = {"swish": "silu", "logsigmoid": "log_sigmoid", "linear": "identity"}


def activation_params(activation, **params):
    """(kind, [alpha, beta, lambda, lower, upper, cutoff, value]) of an activation
    named as cuact or torch.nn.functional names it, with F's keywords
    (negative_slope, min_val, lambd, ...; gelu also takes approximate='tanh')."""
    kind = _ALIASES.get(activation, activation)
    if kind == "gelu" and params.pop("approximate", "none") == "tanh":
        kind = "gelu_tanh"
    if kind not in ACTIVATIONS:
        raise ValueError(f"cuact: unknown activation {activation!r} "
                         f"(one of {', '.join(ACTIVATIONS)})")
    spec = ACTIVATIONS[kind]
    unknown = set(params) - set(spec)
    if unknown:
        raise TypeError(f"cuact: {kind} takes no parameter {', '.join(sorted(unknown))} "
                        f"(it takes: {', '.join(spec) or 'none'})")
    values = dict.fromkeys(_FIELDS, _NAN)
    for keyword, (field, default) in spec.items():
        values[field] = float(params.get(keyword, default))
    return kind, [values[f] for f in _FIELDS]


# ------------------------------------------------------------------ argument rules

def _check_tensor(input, fname):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{fname}(): argument 'input' (position 1) must be Tensor, "
                        f"not {type(input).__name__}")


def _wrap_dim(dim, ndim, fname):
    """dim in [0, ndim) as torch wraps it: a bool or non-integer dim is a
    TypeError, one out of range an IndexError."""
    if isinstance(dim, bool) or not isinstance(dim, (int, torch.SymInt)):
        try:
            if isinstance(dim, bool):
                raise TypeError
            dim = operator.index(dim)
        except TypeError:
            raise TypeError(f"{fname}(): argument 'dim' must be int, not "
                            f"{type(dim).__name__}") from None
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


# Integer inputs, as PyTorch treats them (see the module's doc).
_INTEGER_KERNELS = {"relu": _torch_F.relu, "relu6": _torch_F.relu6,
                    "hardtanh": _torch_F.hardtanh, "threshold": _torch_F.threshold}
_PROMOTES_INTEGERS = {"sigmoid": True, "tanh": True, "softsign": False, "tanhshrink": False}


def _not_implemented(name, dtype):
    return NotImplementedError(f"cuact: \"{name}\" not implemented for '{dtype}' (float32, "
                               f"float16, bfloat16; float64 on the CPU)")


def _tracked(t):
    """Whether a derivative may be taken through t (autograd, forward mode, or
    a torch.func transform). Under torch.compile: yes (a copy the compiler
    does not need, it removes)."""
    if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(t):
        return True
    if torch.is_grad_enabled() and t.requires_grad:
        return True
    return _fwad._current_level >= 0 and _fwad.unpack_dual(t).tangent is not None


# ------------------------------------------------------------------ memory layout

def _memory_order(x):
    """(x viewed in its memory order, which is contiguous, and the permutation
    back) for a dense, non-overlapping x; (x.contiguous(), None) otherwise."""
    if x.is_contiguous():
        return x, None
    order = sorted(range(x.dim()), key=lambda d: (-x.stride(d), -x.shape[d]))
    view = x.permute(order)
    if not view.is_contiguous():
        return x.contiguous(), None
    return view, sorted(range(x.dim()), key=order.__getitem__)


def _elementwise_call(input, fn):
    """fn (an elementwise operation on a contiguous tensor) on input, the result
    in input's layout."""
    view, back = _memory_order(input)
    out = fn(view)
    return out if back is None else out.permute(back)


def _in_place(input, inplace, saves_input, fn):
    """fn(input) (elementwise), or with inplace=True written into input and
    input returned. An in-place call whose gradient needs x (saves_input)
    computes from a copy of x when a derivative is taken through it, as
    PyTorch does for its in-place ops that need self: the gradient is the
    out-of-place one, exactly; the others save their output y."""
    if not inplace:
        return _elementwise_call(input, fn)
    src = input.clone() if saves_input and _tracked(input) else input
    return input.copy_(_elementwise_call(src, fn))


# ------------------------------------------------------------------ activations

def activation(input, activation, inplace=False, **params):
    """y = activation(input): any of ACTIVATIONS by name, with its parameters."""
    _check_tensor(input, activation)
    kind, p = activation_params(activation, **params)
    if not input.is_floating_point():
        if kind in _INTEGER_KERNELS and input.dtype != torch.bool and not input.is_complex():
            return _INTEGER_KERNELS[kind](input, **params, inplace=inplace)
        takes_bool = _PROMOTES_INTEGERS.get(kind)
        if takes_bool is not None and not input.is_complex() and (
                takes_bool or input.dtype != torch.bool):
            if inplace:
                raise RuntimeError(f"result type Float can't be cast to the desired output type "
                                   f"{input.dtype}")
            input = input.to(torch.get_default_dtype())
        else:
            raise _not_implemented(kind, input.dtype)
    if kind == "hardshrink" and p[2] < 0:  # no |x| <= lambd: the identity, as PyTorch's
        kind, p = activation_params("identity")
    if kind == "softplus" and p[1] <= 0:
        return _in_place(input, inplace, True, lambda x: _softplus_nonpositive_beta(x, p))
    return _in_place(input, inplace, not saves_output(kind),
                     lambda x: call("activation", x, kind, p))


def _softplus_nonpositive_beta(x, p):
    """PyTorch's softplus for beta <= 0: x where beta x > threshold, else
    log1p(exp(beta x)) / beta. beta < 0 is the mirror of softplus(-beta) at -x
    (exact: negation rounds nothing); beta = 0 divides log 2 by 0 (inf; the
    gradient PyTorch gives there, 1/2)."""
    beta, threshold = p[1], p[5]
    if beta < 0:
        mirrored = list(p)
        mirrored[1] = -beta
        return -call("activation", -x, "softplus", mirrored)
    inf = (x * 0 + math.inf) + 0.5 * (x - x.detach())
    return torch.where(x * beta > threshold, x, inf)


def _elementwise(kind, doc, *keywords):
    """A function f(input, <keywords with F's defaults>, inplace=False)."""
    spec = ACTIVATIONS[kind]

    def f(input, *args, inplace=False, **kwargs):
        names = keywords + ("inplace",)  # F's positional order
        if len(args) > len(names):
            raise TypeError(f"{kind}() takes at most {len(names) + 1} positional arguments")
        kwargs.update(zip(names, args))
        if "inplace" in kwargs:
            inplace = kwargs.pop("inplace")
        return activation(input, kind, inplace=inplace, **kwargs)

    f.__doc__ = doc + "".join(f"\n    {k} = {spec[k][1]}" for k in keywords if k in spec)
    return f


# The activations with torch.nn.functional's form f(input, <keywords>, inplace=False):
# functional name -> (cuact kind, F's keywords in positional order, torch.nn module, doc).
# cuact.nn builds its modules from the same table.
ELEMENTWISE_FORMS = {
    "relu": ("relu", (), "ReLU", "max(x, 0)."),
    "relu6": ("relu6", (), "ReLU6", "min(max(x, 0), 6)."),
    "hardtanh": ("hardtanh", ("min_val", "max_val"), "Hardtanh", "clamp(x, min_val, max_val)."),
    "leaky_relu": ("leaky_relu", ("negative_slope",), "LeakyReLU",
                   "x if x > 0 else negative_slope * x."),
    "elu": ("elu", ("alpha",), "ELU", "x if x > 0 else alpha * expm1(x)."),
    "selu": ("selu", (), "SELU", "scale * elu(x, alpha) with SELU's fixed constants."),
    "celu": ("celu", ("alpha",), "CELU", "max(0, x) + min(0, alpha * expm1(x / alpha))."),
    "quick_gelu": ("quick_gelu", (), "QuickGELU", "x * sigmoid(1.702 x)."),
    "sigmoid": ("sigmoid", (), "Sigmoid", "1 / (1 + exp(-x))."),
    "tanh": ("tanh", (), "Tanh", "tanh(x)."),
    "silu": ("silu", (), "SiLU", "x * sigmoid(beta x); beta (keyword only, 1 = PyTorch's silu)."),
    "mish": ("mish", (), "Mish", "x * tanh(softplus(x))."),
    "softplus": ("softplus", ("beta", "threshold"), "Softplus",
                 "log1p(exp(beta x)) / beta; x where beta x > threshold."),
    "logsigmoid": ("log_sigmoid", (), "LogSigmoid", "log(sigmoid(x)), stable."),
    "hardsigmoid": ("hardsigmoid", (), "Hardsigmoid", "relu6(x + 3) / 6."),
    "hardswish": ("hardswish", (), "Hardswish", "x * relu6(x + 3) / 6."),
    "softsign": ("softsign", (), "Softsign", "x / (1 + |x|)."),
    "tanhshrink": ("tanhshrink", (), "Tanhshrink", "x - tanh(x)."),
    "hardshrink": ("hardshrink", ("lambd",), "Hardshrink", "x if |x| > lambd else 0."),
    "softshrink": ("softshrink", ("lambd",), "Softshrink",
                   "x -+ lambd outside [-lambd, lambd], else 0."),
    "threshold": ("threshold", ("threshold", "value"), "Threshold", "x if x > threshold else value."),
}
for _name, (_kind, _keywords, _, _doc) in ELEMENTWISE_FORMS.items():
    globals()[_name] = _elementwise(_kind, _doc, *_keywords)


def gelu(input, approximate="none"):
    """x * Phi(x); approximate='tanh' is the tanh approximation (PyTorch's)."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return activation(input, "gelu", approximate=approximate)


# PyTorch's threshold has no defaults: its parameters are required here too.
def threshold(input, threshold, value, inplace=False):
    """x if x > threshold else value."""
    return activation(input, "threshold", inplace, threshold=threshold, value=value)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """clamp(x, min_val, max_val)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return activation(input, "hardtanh", inplace, min_val=min_val, max_val=max_val)


# ------------------------------------------------------------------ random state

def _seed_offset(device, generator=None):
    """A fresh {seed, offset} pair from PyTorch's generator, on `device` (on a
    CUDA device it is drawn by a kernel, so a captured CUDA graph draws a new
    pair at every replay)."""
    return torch.randint(0, 2**62, (2,), dtype=torch.int64, device=device, generator=generator)


# ------------------------------------------------------------------ fused forms

def _check_p(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _floating(input, fname):
    _check_tensor(input, fname)
    if not input.is_floating_point():
        raise _not_implemented(fname, input.dtype)


def bias_activation(input, bias=None, activation="gelu", p=0.0, training=True, generator=None,
                    **params):
    """dropout(activation(input + bias), p) in one pass; bias [input.shape[-1]]
    (the input's dtype, or float32 with 16-bit input) or None. Dropout applies
    when training and p > 0; its mask comes from PyTorch's generator."""
    _floating(input, "bias_activation")
    kind, a = activation_params(activation, **params)
    _check_p(p)
    return _bias_activation(input, bias, kind, a, float(p) if training else 0.0, generator)


def _bias_activation(input, bias, kind, a, p, generator):
    seed_offset = _seed_offset(input.device, generator) if p > 0 else None
    if bias is not None:
        return call("bias_activation", input.contiguous(), bias, kind, a, p, seed_offset)[0]
    return _elementwise_call(
        input, lambda x: call("bias_activation", x, None, kind, a, p, seed_offset)[0])


def activation_dropout(input, activation="relu", p=0.5, training=True, generator=None, **params):
    """dropout(activation(input), p) in one pass."""
    return bias_activation(input, None, activation, p, training, generator, **params)


def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout (kept values scaled by 1/(1-p)), torch.nn.functional's
    form; without training or with p = 0 it returns the input itself, as
    PyTorch does."""
    _check_p(p)
    _floating(input, "dropout")
    if not training or p == 0:
        return input
    kind, a = activation_params("identity")
    fn = lambda x: _bias_activation(x, None, kind, a, float(p), None)  # noqa: E731
    return _in_place(input, inplace, True, fn)


def prelu(input, weight):
    """x if x > 0 else weight[c] * x, channels on dimension 1 (weight of 1 or C)."""
    _floating(input, "prelu")
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.dim()}")
    channels = input.shape[1] if input.dim() >= 2 else 1
    if weight.numel() not in (1, channels):
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                           f"parameter numbers = {weight.numel()} and channel size = {channels}.")
    return call("prelu", input.contiguous(), weight.contiguous())


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, generator=None):
    """x if x >= 0 else r * x; r ~ U(lower, upper) per element when training,
    (lower + upper) / 2 otherwise."""
    _floating(input, "rrelu")
    if lower > upper:
        raise RuntimeError("Lower bound should be less than or equal to the upper bound")
    seed_offset = _seed_offset(input.device, generator) if training else None
    fn = lambda x: call("rrelu", x, float(lower), float(upper), bool(training),  # noqa: E731
                        seed_offset)[0]
    return _in_place(input, inplace, True, fn)


# ------------------------------------------------------------------ GLU family

def gated(input, activation="sigmoid", dim=-1, gate="first", *, limit=None, offset=0.0,
          weight=None, interleave=0, counts=None, offsets=None, **params):
    """Splits `input` in halves a | b along `dim`: activation(a) * b
    (gate='first', the SwiGLU order) or a * activation(b) (gate='second', glu).

    `interleave` (an int >= 0) is the halves' layout along `dim` (of size 2d):
    0, the two halves a | b; k > 0, blocks of k columns of each half in turn,
    the activated half's block first with gate='first' (a0..a(k-1)
    b0..b(k-1) a(k)...), the other's first with gate='second'; k must divide
    d. interleave=1 is gpt-oss's layout (its gate x[..., ::2], its linear
    half x[..., 1::2]); Transformer Engine's glu_interleave_size is k. The
    result keeps the activated half's column order; k = d is the halves.

    The forms of MoE experts (docs/SPEC.md, "Gated activations"), with g the
    activated half and u the other: `limit` clamps g' = min(g, limit) and
    u' = clamp(u, -limit, limit) (limit > 0; None: no clamp), `offset` is
    added to u' (finite): activation(g') * (u' + offset); NaN passes through
    the clamps. `weight` scales each row (a routing weight): the input's shape
    without `dim` (or with `dim` of size 1, as [tokens, 1]), the input's
    dtype or float32; it gets its gradient. With any of them the derivative
    is a first one only: a second, or forward mode, raises. The gradient of a
    clamped half is 0 past the limit and passes at it (SPEC's side; recent
    PyTorch's torch.clamp gives 0 there, older ones pass it); NaN inputs
    give NaN gradients (torch.clamp's would give 0).

    Expert rows (an MoE layer's expert buffers; docs/SPEC.md, "Expert
    rows"), the rows being the input's shape without `dim`: `counts` [E]
    (masked: the rows [E, C], expert e's valid rows its first counts[e]) or
    `offsets` [E + 1] (grouped: any rows, the valid ones offsets[0] up to
    offsets[E]), int32 or int64 on the input's device. Only valid rows are
    computed: the result, and the gradients of the input and the weight, are
    zeros on every other row (those rows take no part). Gates identity,
    relu, sigmoid, silu, gelu and gelu_tanh. A count outside [0, C], an
    offset outside [0, rows] or below the one before raises on the CPU; on
    CUDA the kernels read it clamped and a device-side assertion fails (as
    cross_entropy's bad targets: no host synchronization)."""
    _floating(input, "glu")
    kind, a, dim, last, x = _gated_args(input, activation, dim, gate, params)
    interleave = _interleave(interleave)
    if limit is None and offset == 0 and weight is None and interleave == 0 and \
            counts is None and offsets is None:
        y = call("glu", x, kind, a, gate == "first")
    else:
        w = None if weight is None else _row_weight(weight, input, dim)
        y = call("moe_glu", x, w, kind, a, gate == "first",
                 math.inf if limit is None else float(limit), float(offset), interleave,
                 _expert_rows(counts, "counts"), _expert_rows(offsets, "offsets"))
    return y if last else y.movedim(-1, dim)


def _expert_rows(ids, name):
    """gated's counts or offsets as moe_glu takes them: a tensor (the
    operators check the rest), contiguous."""
    if ids is None:
        return None
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"glu(): {name} must be a Tensor, not {type(ids).__name__}")
    return ids.contiguous()


def _interleave(interleave):
    """gated's interleave as an int (the operators check its value: >= 0, a
    divisor of d)."""
    if isinstance(interleave, bool):
        raise TypeError("glu(): interleave must be an int, not bool")
    try:
        return operator.index(interleave)
    except TypeError:
        raise TypeError(f"glu(): interleave must be an int, not "
                        f"{type(interleave).__name__}") from None


def _row_weight(weight, input, dim):
    """A routing weight as moe_glu takes it: one per row of the input with
    `dim` last (the input's shape without `dim`), contiguous. It is given in
    that shape or with `dim` of size 1; no other broadcast."""
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"glu(): weight must be a Tensor, not {type(weight).__name__}")
    shape = tuple(input.shape)
    rows, kept = shape[:dim] + shape[dim + 1:], shape[:dim] + (1,) + shape[dim + 1:]
    if tuple(weight.shape) == kept:
        weight = weight.squeeze(dim)
    elif tuple(weight.shape) != rows:
        raise RuntimeError(f"glu(): weight's shape {tuple(weight.shape)} is not one weight per "
                           f"row: the input's shape without dim {dim}, {rows} (or {kept})")
    return weight.contiguous()


def _gated_args(input, activation, dim, gate, params):
    """The checks and layout of a GLU call (torch's messages): the activation's
    kind and parameters, `dim` wrapped, whether it is the last dimension, and
    the input with `dim` last, contiguous."""
    if gate not in ("first", "second"):
        raise ValueError(f"gate must be 'first' or 'second', got {gate!r}")
    kind, a = activation_params(activation, **params)
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    dim = _wrap_dim(dim, input.dim(), "glu")
    if input.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size "
                           f"{input.shape[dim]}")
    last = dim == input.dim() - 1
    x = input if last else input.movedim(dim, -1)
    return kind, a, dim, last, x.contiguous()


def glu(input, dim=-1):
    """a * sigmoid(b) over the halves of `dim` (torch.nn.functional.glu)."""
    return gated(input, "sigmoid", dim, "second")


def swiglu(input, dim=-1, *, beta=1.0, weight=None, interleave=0, counts=None, offsets=None):
    """silu(a) * b; weight: a routing weight per row (Megatron's
    weighted_swiglu, silu(a) * b * weight[:, None]), interleave: the halves'
    layout along `dim` (interleave=1: a = x[..., ::2], b = x[..., 1::2]),
    counts / offsets: the expert rows (masked: the input [E, C, 2d] and
    counts [E]; grouped: offsets [E + 1]; zeros outside the valid rows, in
    the result and the gradients), as gated's."""
    return gated(input, "silu", dim, "first", weight=weight, interleave=interleave,
                 counts=counts, offsets=offsets, beta=beta)


def clamped_swiglu(input, dim=-1, *, alpha=1.702, limit=7.0, offset=1.0, weight=None,
                   interleave=0, counts=None, offsets=None):
    """The SwiGLU of gpt-oss's MoE experts (Transformer Engine's
    clamped_swiglu): g' * sigmoid(alpha * g') * (u' + offset) with
    g' = min(a, limit), u' = clamp(b, -limit, limit) over the halves a, b of
    `dim`; weight: a routing weight per row. gated's rules (a first
    derivative only). interleave: the halves' layout along `dim`, gated's: 0
    (the default), the two halves a | b; interleave=1 is gpt-oss's own
    layout (a = x[..., ::2], b = x[..., 1::2]), so its checkpoint's
    projection runs as it is; k > 0, blocks of k columns of each (Transformer
    Engine's glu_interleave_size). counts / offsets: an MoE layer's expert
    buffers, gated's: masked, the input [E, C, 2d] (E experts of capacity
    C) with counts [E], expert e's valid rows its first counts[e]; grouped,
    the input [..., 2d] with offsets [E + 1], the valid rows offsets[0] up
    to offsets[E]. Every other row of the result, and of the input's and
    the weight's gradients, is zero."""
    return gated(input, "silu", dim, "first", limit=limit, offset=offset, weight=weight,
                 interleave=interleave, counts=counts, offsets=offsets, beta=alpha)


def geglu(input, dim=-1, *, approximate="none"):
    """gelu(a) * b (approximate='tanh': the tanh gelu)."""
    return gated(input, "gelu", dim, "first", approximate=approximate)


def reglu(input, dim=-1):
    """relu(a) * b."""
    return gated(input, "relu", dim, "first")


# ------------------------------------------------------------------ softmax family

def _softmax_dim(ndim, name):
    """torch.nn.functional's implicit choice (and warning) when dim is None."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=4)
    return 0 if ndim in (0, 1, 3) else 1


def _mask_layout(mask, x):
    """(dense [mask_rows, cols] additive mask of x's dtype, mask_rows, mask_row_repeat)
    for a mask that broadcasts to x. A bool mask keeps True (as
    scaled_dot_product_attention's) and hides False. The mask's gradient, when
    it requires one, reaches it through these views (summed over its
    broadcast dimensions)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"the mask must be a Tensor, not {type(mask).__name__}")
    if mask.device != x.device:
        raise RuntimeError("Expected all tensors to be on the same device, but found at least "
                           f"two devices, {x.device} and {mask.device}!")
    cols = x.shape[-1]
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill_(~mask, -math.inf)
    mask = mask.to(x.dtype)
    if mask.dim() > x.dim():
        raise RuntimeError(f"the mask's shape {tuple(mask.shape)} does not broadcast to the "
                           f"input's {tuple(x.shape)}")
    if mask.dim() == 0 or mask.shape[-1] != cols:
        mask = mask.expand(*mask.shape[:-1], cols) if mask.dim() else mask.expand(cols)
    lead = list(x.shape[:-1])
    mlead = [1] * (len(lead) - (mask.dim() - 1)) + list(mask.shape[:-1])
    span = [i for i, m in enumerate(mlead) if m != 1]
    if not span:
        return mask.reshape(1, cols).contiguous(), 1, 1
    first, last = span[0], span[-1]
    if all(mlead[i] == lead[i] for i in range(first, last + 1)):
        rows = math.prod(lead[first:last + 1])
        repeat = math.prod(lead[last + 1:])
        return mask.reshape(rows, cols).contiguous(), rows, repeat
    # Any other broadcast: one mask row per data row.
    full = mask.expand(x.shape).reshape(-1, cols).contiguous()
    return full, full.shape[0], 1


def _softmax_args(input, dim, name, mask, causal):
    """The checks and layout of a softmax-family call on a floating input
    (torch's messages): (x, dim, (mask, mask_rows, mask_row_repeat,
    causal_rows)) as the operators take them: x the input (a 0-d one as 1-D),
    2-D rows with a row stride as they are, anything else contiguous; dim
    wrapped; the mask as _mask_layout lays it out, causal_rows 0 without causal."""
    dim = _wrap_dim(dim, input.dim(), name)
    if input.dim() == 0:
        input = input.reshape(1)
    mask_rows, repeat, causal_rows = 1, 1, 0
    if mask is not None or causal:
        if dim != input.dim() - 1:
            raise ValueError("cuact: mask and causal apply to the last dimension only")
        if mask is not None:
            mask, mask_rows, repeat = _mask_layout(mask, input)
        if causal:
            if input.dim() < 2:
                raise ValueError("cuact: causal needs [..., queries, keys] scores")
            causal_rows = input.shape[-2]
    x = _rows(input) if dim == input.dim() - 1 else input.contiguous()
    return x, dim, (mask, mask_rows, repeat, causal_rows)


def _rows(x):
    """x as the row operators (softmax along the last dimension,
    cross_entropy) read it: 2-D rows whose last dimension is dense as they
    are, with their row stride; anything else contiguous."""
    if x.dim() == 2 and x.stride(1) == 1 and x.stride(0) >= x.shape[1]:
        return x
    return x.contiguous()


def _softmax(input, dim, dtype, kind, scale, mask, causal, causal_offset):
    _check_tensor(input, kind)
    if dtype is not None:
        input = input.to(dtype)
    if not input.is_floating_point():
        raise _not_implemented(kind, input.dtype)
    if dim is None:
        dim = _softmax_dim(input.dim(), kind)
    x, dim, hidden = _softmax_args(input, dim, kind, mask, causal)
    y = call("softmax", x, dim, kind, float(scale), *hidden, int(causal_offset))
    return y.reshape(()) if input.dim() == 0 else y


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, scale=1.0, mask=None, causal=False,
            causal_offset=0):
    """softmax(scale * input + mask) along `dim`. mask: additive (float) or keep
    (bool, True takes part), broadcast to the input; causal=True hides key j > i +
    causal_offset of query i for [..., queries, keys] scores (offset 0: top-left,
    keys - queries: bottom-right). A row with nothing left gives zeros."""
    return _softmax(input, dim, dtype, "softmax", scale, mask, causal, causal_offset)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, scale=1.0, mask=None,
                causal=False, causal_offset=0):
    """log(softmax(...)), computed directly; a row with nothing left gives -inf."""
    return _softmax(input, dim, dtype, "log_softmax", scale, mask, causal, causal_offset)


def softmin(input, dim=None, _stacklevel=3, dtype=None, *, scale=1.0, mask=None, causal=False,
            causal_offset=0):
    """softmax(-scale * input + mask)."""
    return _softmax(input, dim, dtype, "softmin", scale, mask, causal, causal_offset)


# ------------------------------------------------------------------ cross-entropy

CROSS_ENTROPY_REDUCTIONS = _ops.CROSS_ENTROPY_REDUCTIONS
LABEL_SMOOTHING_FORMS = _ops.LABEL_SMOOTHING_FORMS


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, *, smoothing="pytorch", z_loss=0.0, softcap=0.0,
                  logit_scale=1.0, empty_mean_is_zero=False, return_z_loss=False,
                  inplace_backward=False):
    """The softmax cross-entropy of logits `input` [N, C] (or [C] with a 0-d
    target) against class indices `target` [N] (int32 or int64), with
    torch.nn.functional.cross_entropy's weight, ignore_index, reduction
    ("none", "sum", "mean") and label_smoothing, and cuact's options
    (docs/SPEC.md, "Cross-entropy"): smoothing="megatron" (Megatron's label
    smoothing, no class weights), z_loss (z_loss * lse^2 added to each
    counted row), softcap (logits capped as softcap * tanh(x / softcap)),
    logit_scale (logits times it, before the cap), empty_mean_is_zero (a
    mean over no counted row: 0, not NaN).

    One fused pass computes the loss and the input's gradient; the backward
    scales that gradient. The loss is float32 ([N] for "none", else 0-d)
    whatever the input's dtype; the gradient is the input's dtype. Only the
    input has a derivative, a first one only (a second, or forward mode,
    raises); a weight that requires grad is refused. return_z_loss=True
    returns (loss, z) with z the z-loss part of the loss, reduced as the loss
    is (float32, no gradient: the loss includes it).

    inplace_backward=True (Liger's inplace_backward) writes the gradient over
    the input's memory: the call overwrites `input` with d loss / d input
    (for "none", of the rows' sum), in every grad mode, and the backward
    scales it there by the upstream gradient and hands it on: no [N, C]
    buffer beyond the logits. The input must be read where it lies: [C]
    contiguous, or [N, C] with a dense last dimension and rows at least a row
    apart (else ValueError; a copy would take the gradient); not a leaf that
    requires grad, nor a view of one (RuntimeError, as for torch's in-place
    operations). The input's version counter is bumped, so a backward that
    saved the old logits raises "modified by an inplace operation"; read
    anything else from the logits before the call. One backward per call (a
    second raises); no torch.func transforms or forward mode.

    A target that is neither a class nor ignore_index: on CUDA a device-side
    assertion (torch._assert_async on the kernel's flag, no host
    synchronization; it surfaces at a later synchronization, and the CUDA
    context is lost, as with torch's own cross_entropy); on the CPU a
    RuntimeError naming the target and its row, before anything is written."""
    fname = "cross_entropy"
    _check_tensor(input, fname)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{fname}(): argument 'target' (position 2) must be Tensor, not "
                        f"{type(target).__name__}")
    ignore_index = _index(ignore_index, f"{fname}(): ignore_index must be an int (torch's "
                                        "size_average and reduce, positions 4 and 6 there, "
                                        "are not taken)")
    if reduction not in CROSS_ENTROPY_REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if smoothing not in LABEL_SMOOTHING_FORMS:
        raise ValueError(f"cuact: unknown label smoothing form {smoothing!r} "
                         f"(one of {', '.join(LABEL_SMOOTHING_FORMS)})")
    if not input.is_floating_point():
        raise _not_implemented(fname, input.dtype)
    if target.is_floating_point() and target.shape == input.shape:
        raise NotImplementedError("cuact: cross_entropy takes class indices; class-probability "
                                  "targets are not supported")
    if input.dim() == 1:  # one row: [C] with a 0-d target (or one of one element)
        if target.dim() > 1 or target.numel() != 1:
            raise RuntimeError(f"{fname}(): a 1-D input [C] takes a 0-d target, got shape "
                               f"{tuple(target.shape)}")
        x = input.reshape(1, input.shape[0])
    elif input.dim() == 2:
        if target.dim() != 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if target.shape[0] != input.shape[0]:
            raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                             f"batch_size ({target.shape[0]}).")
        x = input
    elif input.dim() == 0:
        raise RuntimeError(f"{fname}(): the input must be [N, C] or [C], got a 0-d tensor")
    else:
        raise NotImplementedError(
            f"cuact: cross_entropy takes input [N, C] or [C], got {input.dim()} dimensions; for "
            "[N, C, d1, ...] move the classes last and flatten: "
            "input.movedim(1, -1).reshape(-1, C) with target.reshape(-1)")
    t = target.reshape(-1).contiguous()
    w = None if weight is None else weight.contiguous()
    options = (ignore_index, reduction, float(label_smoothing), smoothing, float(z_loss),
               float(softcap), float(logit_scale), bool(empty_mean_is_zero))
    if inplace_backward:
        _check_inplace_backward(input, x)
        loss, z_rows = CrossEntropyInplace.apply(input, t, w, *options)
    else:
        loss, _, z_rows, _ = call("cross_entropy", _rows(x), t, w, *options)
    if input.dim() == 1:
        loss, z_rows = loss.reshape(()), z_rows.reshape(())
    if not return_z_loss:
        return loss
    if reduction == "none":
        return loss, z_rows
    z = z_rows.sum()
    if reduction == "mean":
        d = _mean_denominator(t, x.shape[1], w, ignore_index, smoothing)
        z = z / d  # no counted row: 0 / 0
        if empty_mean_is_zero:
            z = torch.where(d == 0, 0.0, z)
    return loss, z


def _check_inplace_backward(input, rows):
    """inplace_backward's refusals: memory that cannot take the gradient where
    the input lies, an input autograd does not allow written in place, and
    the transforms the in-place Function does not support."""
    prefix = "cuact.cross_entropy(inplace_backward=True)"
    if _rows(rows) is not rows or (input.dim() == 1 and not input.is_contiguous()):
        raise ValueError(f"{prefix}: the input (shape {tuple(input.shape)}, strides "
                         f"{input.stride()}) is not read where it lies: it takes [C] contiguous "
                         "or [N, C] with a dense last dimension and rows at least a row apart; "
                         "pass input.contiguous() (the gradient then goes over the copy) or "
                         "inplace_backward=False")
    if not torch.compiler.is_compiling():
        if torch._C._functorch.is_functorch_wrapped_tensor(input):
            raise NotImplementedError(f"{prefix} does not run under torch.func transforms "
                                      "(grad, vmap, ...): use inplace_backward=False")
        if _fwad._current_level >= 0 and _fwad.unpack_dual(input).tangent is not None:
            raise NotImplementedError("cuact.cross_entropy has no forward-mode derivative (jvp, "
                                      "torch.func.jvp, jacfwd): use reverse mode")
    if torch.is_grad_enabled() and input.requires_grad:
        base = input if input._base is None else input._base
        if base.is_leaf:
            what = "a leaf" if base is input else "a view of a leaf"
            raise RuntimeError(f"{prefix}: the input is {what} that requires grad, which "
                               "autograd does not let be overwritten (a leaf's gradient goes "
                               "to .grad): use inplace_backward=False")


def _index(v, message):
    """v as an int (anything with __index__ but a bool), else TypeError(message)."""
    if isinstance(v, torch.SymInt):
        return v
    try:
        if isinstance(v, bool):
            raise TypeError
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{message}, not {type(v).__name__}") from None


def _mean_denominator(target, classes, weight, ignore_index, smoothing):
    """SPEC's D, the mean's denominator (float32): the counted rows' w_t
    (PyTorch's form with class weights) or their count. A target that is
    neither a class nor ignore_index counts nothing, as on the device (where
    the call's assertion fails; the CPU refuses it)."""
    counted = (target != ignore_index) & (target >= 0) & (target < classes)
    if weight is None or smoothing == "megatron":
        return counted.sum().float()
    w_t = weight.float()[target.clamp(0, max(classes - 1, 0))]  # in range, also where not counted
    return torch.where(counted, w_t, 0.0).sum()


# ------------------------------------------------------------------ fp8 outputs

class Float8Output(typing.NamedTuple):
    """An fp8 result with one scale per tensor (docs/PYTHON.md, "fp8 outputs").

    data: the codes, float8_e4m3fn or float8_e5m2, the result's shape;
    scale: float32 [1], the factor the result was multiplied by
    (code = fp8(result * scale); Transformer Engine's `scale`, torchao's
    Float8TrainingTensor `_scale`); amax: float32 [1], max |result| before
    scaling, NaN excluded (the next step's delayed scale is taken from it);
    scale_inv: float32 [1], 1 / scale, the factor that dequantizes
    (result ~ data * scale_inv; TE's `scale_inv`, the scale_a / scale_b
    torch._scaled_mm takes, torchao's Float8Tensor `scale`)."""
    data: torch.Tensor
    scale: torch.Tensor
    amax: torch.Tensor
    scale_inv: torch.Tensor

    def dequantize(self, dtype=torch.float32):
        """data * scale_inv in `dtype`."""
        return self.data.to(dtype) * self.scale_inv.reshape(()).to(dtype)


def _no_gradient(fname, *tensors):
    """fp8 outputs carry no gradient: a call that would record one is refused
    (the operators refuse it too; here the message is the same under
    torch.compile)."""
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        raise RuntimeError(refuse_gradient(fname))
    if not torch.compiler.is_compiling() and _fwad._current_level >= 0 and any(
            _fwad.unpack_dual(t).tangent is not None for t in tensors):
        raise RuntimeError(refuse_gradient(fname))


def _fp8_args(fname, input, scale, tensors=()):
    _floating(input, fname)
    if scale is not None and not isinstance(scale, torch.Tensor):
        raise TypeError(f"{fname}(): scale must be a float32 Tensor of one element (or None: "
                        f"the current recipe), not {type(scale).__name__}")
    _no_gradient(fname, input, scale, *tensors)


def _recipe(dtype, scale, margin, power_of_two):
    return dtype, scale, int(margin), bool(power_of_two)


def _with_layout(out, back):
    """The operator's outputs as a Float8Output, the codes permuted back to the
    input's layout."""
    data = out[0] if back is None else out[0].permute(back)
    return Float8Output(data, out[1], out[2], out[3])


def _paired(input, other, fname):
    """(input, other) in input's memory order, contiguous, and the permutation
    back (None: contiguous)."""
    if not isinstance(other, torch.Tensor):
        raise TypeError(f"{fname}(): grad_output must be a Tensor, not {type(other).__name__}")
    if other.shape != input.shape:
        raise RuntimeError(f"{fname}(): grad_output's shape {tuple(other.shape)} is not the "
                           f"input's {tuple(input.shape)}")
    view, back = _memory_order(input)
    if back is None:
        return view, other.contiguous(), None
    order = sorted(range(input.dim()), key=back.__getitem__)
    return view, other.permute(order).contiguous(), back


def activation_fp8(input, activation, dtype=torch.float8_e4m3fn, *, scale=None, margin=0,
                   power_of_two=False, **params):
    """activation(input) as fp8 codes with one scale per tensor: a Float8Output
    (data in the input's layout, scale, amax, scale_inv). scale: a float32
    tensor of one element on the input's device (the delayed recipe), or None
    (the current recipe: scale = max_fp8 / amax / 2^margin, rounded down to a
    power of two with power_of_two=True). No gradient."""
    fname = "activation_fp8"
    _fp8_args(fname, input, scale)
    kind, p = activation_params(activation, **params)
    view, back = _memory_order(input)
    out = torch.ops.cuact.activation_fp8(view, kind, p, *_recipe(dtype, scale, margin,
                                                                   power_of_two))
    return _with_layout(out, back)


def activation_backward_fp8(input, grad_output, activation, dtype=torch.float8_e5m2, *,
                            from_output=False, scale=None, margin=0, power_of_two=False,
                            **params):
    """grad_output * activation'(input) as fp8 codes (dact), a Float8Output.
    from_output=True: `input` is the saved output y (the kinds with a backward
    from the output: relu, elu, selu, celu, sigmoid, tanh, identity). The
    recipe as activation_fp8's. No gradient."""
    fname = "activation_backward_fp8"
    _fp8_args(fname, input, scale, (grad_output,))
    kind, p = activation_params(activation, **params)
    x, g, back = _paired(input, grad_output, fname)
    op = (torch.ops.cuact.activation_backward_from_output_fp8 if from_output
          else torch.ops.cuact.activation_backward_fp8)
    return _with_layout(op(x, g, kind, p, *_recipe(dtype, scale, margin, power_of_two)), back)


def bias_activation_fp8(input, bias=None, activation="gelu", p=0.0, training=True,
                        generator=None, dtype=torch.float8_e4m3fn, *, scale=None, margin=0,
                        power_of_two=False, **params):
    """dropout(activation(input + bias), p) as fp8 codes, a Float8Output;
    bias_activation's arguments (the same mask for the same generator state)
    and activation_fp8's recipe. No gradient."""
    fname = "bias_activation_fp8"
    _fp8_args(fname, input, scale, (bias,))
    kind, a = activation_params(activation, **params)
    _check_p(p)
    p = float(p) if training else 0.0
    seed_offset = _seed_offset(input.device, generator) if p > 0 else None
    recipe = _recipe(dtype, scale, margin, power_of_two)
    if bias is not None:
        x, back = input.contiguous(), None
    else:
        x, back = _memory_order(input)
    out = torch.ops.cuact.bias_activation_fp8(x, bias, kind, a, p, seed_offset, *recipe)
    return _with_layout(out, back)


def bias_activation_backward_fp8(input, bias, grad_output, activation="gelu",
                                 dtype=torch.float8_e5m2, *, scale=None, margin=0,
                                 power_of_two=False, **params):
    """dact + dbias: (Float8Output of grad_output * activation'(input + bias),
    dbias) with dbias [input.shape[-1]] in the bias's dtype, the column sums
    of the unquantized products (None without a bias). No dropout; the
    recipe as activation_fp8's. No gradient."""
    fname = "bias_activation_backward_fp8"
    _fp8_args(fname, input, scale, (bias, grad_output))
    kind, a = activation_params(activation, **params)
    recipe = _recipe(dtype, scale, margin, power_of_two)
    if bias is not None:
        x, g, back = _paired(input.contiguous(), grad_output, fname)
    else:
        x, g, back = _paired(input, grad_output, fname)
    out = torch.ops.cuact.bias_activation_backward_fp8(x, bias, g, kind, a, *recipe)
    return _with_layout(out[:4], back), (out[4] if bias is not None else None)


def gated_fp8(input, activation="sigmoid", dim=-1, gate="first", dtype=torch.float8_e4m3fn, *,
              scale=None, margin=0, power_of_two=False, **params):
    """gated's result (activation of one half of `dim` times the other) as fp8
    codes, a Float8Output (data contiguous, as gated's); activation_fp8's
    recipe. No gradient."""
    fname = "glu_fp8"
    _fp8_args(fname, input, scale)
    kind, a, dim, last, x = _gated_args(input, activation, dim, gate, params)
    out = torch.ops.cuact.glu_fp8(x, kind, a, gate == "first",
                                  *_recipe(dtype, scale, margin, power_of_two))
    data = out[0] if last else out[0].movedim(-1, dim)
    return Float8Output(data, out[1], out[2], out[3])


def glu_fp8(input, dim=-1, dtype=torch.float8_e4m3fn, **recipe):
    """glu (a * sigmoid(b)) as fp8 codes."""
    return gated_fp8(input, "sigmoid", dim, "second", dtype, **recipe)


def swiglu_fp8(input, dim=-1, dtype=torch.float8_e4m3fn, *, beta=1.0, **recipe):
    """swiglu (silu(a) * b) as fp8 codes."""
    return gated_fp8(input, "silu", dim, "first", dtype, beta=beta, **recipe)


def geglu_fp8(input, dim=-1, dtype=torch.float8_e4m3fn, *, approximate="none", **recipe):
    """geglu (gelu(a) * b) as fp8 codes."""
    return gated_fp8(input, "gelu", dim, "first", dtype, approximate=approximate, **recipe)


def reglu_fp8(input, dim=-1, dtype=torch.float8_e4m3fn, **recipe):
    """reglu (relu(a) * b) as fp8 codes."""
    return gated_fp8(input, "relu", dim, "first", dtype, **recipe)


SOFTMAX_KINDS = ("softmax", "log_softmax", "softmin")


def softmax_fp8(input, dim=-1, dtype=torch.float8_e4m3fn, *, kind="softmax", softmax_scale=1.0,
                mask=None, causal=False, causal_offset=0, scale=None, margin=0,
                power_of_two=False):
    """softmax(softmax_scale * input + mask) along `dim` (kind='log_softmax':
    its log; 'softmin': of -softmax_scale * input + mask) as fp8 codes, a
    Float8Output (data contiguous, as softmax's). softmax's options (mask,
    causal, causal_offset; softmax's `scale` is softmax_scale here) and
    activation_fp8's recipe (`scale`: the fp8 scale, None: the current
    recipe). FP8 attention's probabilities take the delayed recipe with a
    fixed scale (448 for e4m3: a probability is at most 1). No gradient."""
    fname = "softmax_fp8"
    _fp8_args(fname, input, scale, (mask,))
    if kind not in SOFTMAX_KINDS:
        raise ValueError(f"cuact: unknown softmax kind {kind!r} "
                         f"(one of {', '.join(SOFTMAX_KINDS)})")
    x, dim, hidden = _softmax_args(input, dim, fname, mask, causal)
    out = torch.ops.cuact.softmax_fp8(x, dim, kind, float(softmax_scale), *hidden,
                                      int(causal_offset),
                                      *_recipe(dtype, scale, margin, power_of_two))
    data = out[0].reshape(()) if input.dim() == 0 else out[0]
    return Float8Output(data, out[1], out[2], out[3])


# ------------------------------------------------------------------ block-scaled fp8 outputs

class BlockScaledFloat8(typing.NamedTuple):
    """An fp8 result with one scale per block of a row (docs/PYTHON.md,
    "Block-scaled fp8 outputs"; docs/SPEC.md, "Block-scaled outputs").

    data: the codes, float8_e4m3fn or float8_e5m2, the result's shape
    (contiguous); the blocks are `block` consecutive entries of its last
    dimension, counted from 0 (a row's last block may be partial).
    scales: the scale of each block (result ~ code * scale): float8_e8m0fnu
    (the power of two 2^e, the byte e + 127) for scale_type "e8m0" and
    "e8m0_floor", float32 for "f32"; [rows, groups] (row_major), [groups,
    rows] (column_major) or the 1-D padded buffer of cuBLAS's and CUTLASS's
    128 x 4 swizzle (swizzled_128x4: rows padded to 128, groups to 4, the
    padding zero), with rows the product of the leading dimensions and
    groups = ceil(last dimension / block). column_major_packed (1-byte
    scales only): DeepGEMM's packed UE8M0 tensor, int32 [rows,
    ceil(groups / 4)] with strides (1, R4), R4 = rows rounded up to 4 (a
    transposed view over an int32 buffer [ceil(groups / 4), R4], the
    padding zero); word k of a row holds the bytes of its blocks 4k ..
    4k + 3, block 4k in the low byte. amax: float32 0-d, max |result| over
    the call, NaN excluded."""
    data: torch.Tensor
    scales: torch.Tensor
    amax: torch.Tensor


class BlockScaledFloat4(typing.NamedTuple):
    """An NVFP4 result (docs/SPEC.md, "Block-scaled outputs", scale type
    e4m3): e2m1 codes with an e4m3 scale per block of 16 consecutive results
    of a row and one fp32 scale for the tensor.

    data: float4_e2m1fn_x2, the result's shape with the last dimension
    halved (contiguous): each byte holds two codes, result column 2i in its
    low nibble and 2i + 1 in its high one (sign 0x8, then the magnitude's
    code for 0, 0.5, 1, 1.5, 2, 3, 4, 6). scales: float8_e4m3fn, one per
    block of 16 results (the last dimension's blocks counted from 0, the
    last one may be partial), laid out as BlockScaledFloat8's scales
    (column_major_packed: int32 words of four e4m3 bytes).
    amax: float32 0-d, max |result| over the call, NaN excluded.
    tensor_scale: the float32 tensor scale t the call used (as given, or as
    nvfp4 found it); one that is not a positive finite number acts as 1.
    result ~ e2m1 value * scale * t."""
    data: torch.Tensor
    scales: torch.Tensor
    amax: torch.Tensor
    tensor_scale: torch.Tensor


BLOCK_SCALE_TYPES = _ops.BLOCK_SCALE_TYPES
BLOCK_SIZES = _ops.BLOCK_SIZES
SCALE_LAYOUTS = _ops.SCALE_LAYOUTS
# The GLU family by name: (activation, gated half), as glu, swiglu, geglu, reglu compute them.
GLU_FORMS = {"glu": ("sigmoid", "second"), "swiglu": ("silu", "first"),
             "geglu": ("gelu", "first"), "reglu": ("relu", "first")}
# NVFP4's fixed output arguments: e2m1 codes, blocks of 16, e4m3 scales.
_NVFP4 = (_ops.FLOAT4, 16, _ops.NVFP4_SCALE_TYPE)


def _block_args(fname, input, tensors, dtype, block, scale_type, scale_layout,
                scale_types=BLOCK_SCALE_TYPES):
    """The checks of a block-scaled call; its output arguments as the operators
    take them. Which block sizes cuact takes with which scale type, it says
    itself (its Status, raised by the operators)."""
    _floating(input, fname)
    _no_gradient(fname, input, *tensors)
    if isinstance(block, bool) or block not in BLOCK_SIZES:
        raise ValueError(f"{fname}(): block must be 16, 32, 64 or 128, got {block!r}")
    if scale_type not in scale_types:
        raise ValueError(f"{fname}(): unknown scale_type {scale_type!r} "
                         f"(one of {', '.join(scale_types)})")
    if scale_layout not in SCALE_LAYOUTS:
        raise ValueError(f"{fname}(): unknown scale_layout {scale_layout!r} "
                         f"(one of {', '.join(SCALE_LAYOUTS)})")
    return dtype, int(block), scale_type, scale_layout


def _bias_activation_block(input, activation, bias, out_args, tensor_scale, params):
    """The bias_activation_block_fp8 operator's (codes, scales, amax) for the
    functions' arguments (a 0-d input as one element)."""
    kind, a = activation_params(activation, **params)
    x = input.reshape(1) if input.dim() == 0 else input.contiguous()
    out = torch.ops.cuact.bias_activation_block_fp8(x, kind, a, bias, *out_args, tensor_scale)
    data = out[0].reshape(()) if input.dim() == 0 else out[0]
    return data, out[1], out[2]


def _glu_block(fname, input, glu, out_args, tensor_scale, params):
    """The glu_block_fp8 operator's (codes, scales, amax) for a GLU by name
    over the halves of the last dimension."""
    if glu not in GLU_FORMS:
        raise ValueError(f"{fname}(): unknown glu {glu!r} (one of {', '.join(GLU_FORMS)})")
    activation, gate = GLU_FORMS[glu]
    kind, a, _, _, x = _gated_args(input, activation, -1, gate, params)
    return torch.ops.cuact.glu_block_fp8(x, kind, a, gate == "first", *out_args, tensor_scale)


def bias_activation_block_fp8(input, activation, bias=None, *, dtype=torch.float8_e4m3fn,
                              block=32, scale_type="e8m0", scale_layout="row_major", **params):
    """activation(input + bias) (bias [input.shape[-1]], the input's dtype or
    float32 with 16-bit input; None: activation(input)) as fp8 codes with one
    scale per block of `block` consecutive results along the last dimension:
    a BlockScaledFloat8 (data, scales, amax). block: 16, 32, 64 or 128; which
    of them cuact takes with which scale type, it says (a RuntimeError with
    its message). scale_type "e8m0": E8M0, rounded up (MXFP8 with block 32:
    Transformer Engine's, Blackwell's); "e8m0_floor": the OCP MX spec's
    rule; "f32": amax / max_fp8 in float32 (DeepSeek-style). scale_layout:
    "row_major", "column_major", "swizzled_128x4" or "column_major_packed"
    (DeepGEMM's packed UE8M0 int32 words, BlockScaledFloat8; not with
    "f32": cuact refuses it, a RuntimeError). float32, float16, bfloat16
    inputs. No gradient. NVFP4: bias_activation_nvfp4."""
    fname = "bias_activation_block_fp8"
    out_args = _block_args(fname, input, (bias,), dtype, block, scale_type, scale_layout)
    return BlockScaledFloat8(*_bias_activation_block(input, activation, bias, out_args, None,
                                                     params))


def glu_block_fp8(input, glu="swiglu", *, dtype=torch.float8_e4m3fn, block=32,
                  scale_type="e8m0", scale_layout="row_major", **params):
    """A GLU over the halves of the last dimension (glu: "swiglu", "geglu",
    "reglu" or "glu", as the functions of those names compute them; params:
    the activation's, beta for swiglu, approximate for geglu) as block-scaled
    fp8 codes, a BlockScaledFloat8; bias_activation_block_fp8's keywords.
    No gradient. NVFP4: glu_nvfp4."""
    fname = "glu_block_fp8"
    out_args = _block_args(fname, input, (), dtype, block, scale_type, scale_layout)
    return BlockScaledFloat8(*_glu_block(fname, input, glu, out_args, None, params))


def mxfp8(input, activation="identity", bias=None, *, dtype=torch.float8_e4m3fn,
          scale_layout="row_major", **params):
    """MXFP8 (blocks of 32, E8M0 scales rounded up) of activation(input + bias):
    bias_activation_block_fp8 with block=32, scale_type="e8m0"."""
    return bias_activation_block_fp8(input, activation, bias, dtype=dtype, block=32,
                                     scale_type="e8m0", scale_layout=scale_layout, **params)


# NVFP4's tensor scale as torchao and Transformer Engine derive it from the
# tensor's amax: amax / (largest e4m3 * largest e2m1), so that the block with
# the tensor's amax gets the largest e4m3 scale.
NVFP4_TENSOR_SCALE_DIVISOR = 448.0 * 6.0


def _tensor_scale(fname, tensor_scale, input):
    """NVFP4's tensor scale as the operators take it: a tensor (float32, one
    element, on the input's device: the operators check it) as it is, a real
    number as a float32 tensor of one element on the input's device."""
    if isinstance(tensor_scale, torch.Tensor):
        return tensor_scale
    if isinstance(tensor_scale, bool) or not isinstance(tensor_scale, (int, float)):
        raise TypeError(f"{fname}(): tensor_scale must be a float32 Tensor of one element or a "
                        f"real number, not {type(tensor_scale).__name__}")
    return torch.tensor([float(tensor_scale)], dtype=torch.float32, device=input.device)


def _nvfp4_args(fname, input, tensors, tensor_scale, scale_layout):
    """The checks of an NVFP4 call: (its output arguments as the operators take
    them, the tensor scale as a tensor)."""
    _floating(input, fname)
    tensor_scale = _tensor_scale(fname, tensor_scale, input)
    out_args = _block_args(fname, input, (*tensors, tensor_scale), *_NVFP4, scale_layout,
                           scale_types=(_ops.NVFP4_SCALE_TYPE,))
    return out_args, tensor_scale


def _check_even(fname, cols):
    if cols % 2:
        raise ValueError(f"{fname}(): NVFP4 packs two codes a byte: the result's last dimension "
                         f"must be even, got {cols}")


def bias_activation_nvfp4(input, activation, bias=None, *, tensor_scale,
                          scale_layout="row_major", **params):
    """activation(input + bias) (bias as bias_activation_block_fp8's) as NVFP4:
    e2m1 codes with an e4m3 scale per block of 16 results along the last
    dimension (even: two codes a byte, else ValueError), relative to the
    given fp32 `tensor_scale` t (a float32 tensor of one element on the
    input's device, read when the kernel runs: a CUDA graph may replay with
    a new value; or a real number). Typically t = amax / (448 * 6) of the
    tensor (torchao's per_tensor_amax_to_scale); one that is not a positive
    finite number acts as 1. The block's scale is the e4m3 value of
    amax_block / (6 t), each code the e2m1 value nearest result / (scale t)
    (docs/SPEC.md gives the fp32 steps). A BlockScaledFloat4 (data, scales,
    amax, tensor_scale); scale_layout as bias_activation_block_fp8's.
    float32, float16, bfloat16 inputs. No gradient."""
    fname = "bias_activation_nvfp4"
    out_args, t = _nvfp4_args(fname, input, (bias,), tensor_scale, scale_layout)
    _check_even(fname, input.shape[-1] if input.dim() else 1)
    return BlockScaledFloat4(*_bias_activation_block(input, activation, bias, out_args, t,
                                                     params), t)


def glu_nvfp4(input, glu="swiglu", *, tensor_scale, scale_layout="row_major", **params):
    """A GLU over the halves of the last dimension (glu_block_fp8's forms and
    params) as NVFP4, a BlockScaledFloat4; bias_activation_nvfp4's
    tensor_scale and scale_layout. The result's last dimension (half the
    input's) must be even. No gradient."""
    fname = "glu_nvfp4"
    out_args, t = _nvfp4_args(fname, input, (), tensor_scale, scale_layout)
    if input.dim() and input.shape[-1] % 2 == 0:
        _check_even(fname, input.shape[-1] // 2)
    return BlockScaledFloat4(*_glu_block(fname, input, glu, out_args, t, params), t)


def nvfp4(input, activation="identity", bias=None, *, tensor_scale=None,
          scale_layout="row_major", **params):
    """NVFP4 of activation(input + bias): bias_activation_nvfp4. tensor_scale
    None: the library's found tensor scale (docs/SPEC.md, Block-scaled
    outputs): t = amax / (448 * 6) in float32 (torchao's
    per_tensor_amax_to_scale, Transformer Engine's rule), at least 2^-126,
    and 1 where amax is 0 or inf, with amax the call's own, exactly the amax
    the quantizing call sees (its amax output, NaN excluded): found by a
    first call of the same operator whose codes are discarded, so the input
    is read twice. The returned tensor_scale is t."""
    if tensor_scale is None:
        _floating(input, "nvfp4")
        one = torch.ones(1, dtype=torch.float32, device=input.device)
        first = bias_activation_nvfp4(input, activation, bias, tensor_scale=one,
                                      scale_layout=scale_layout, **params)
        amax = first.amax.reshape(1)
        t = (amax / NVFP4_TENSOR_SCALE_DIVISOR).clamp_min(2.0 ** -126)
        tensor_scale = torch.where((amax > 0) & (amax < math.inf), t, torch.ones_like(t))
    return bias_activation_nvfp4(input, activation, bias, tensor_scale=tensor_scale,
                                 scale_layout=scale_layout, **params)


__all__ = [
    "activation", "activation_params", "ACTIVATIONS", "ELEMENTWISE_FORMS",
    "relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "gelu", "quick_gelu",
    "sigmoid", "tanh", "silu", "mish", "softplus", "logsigmoid", "hardsigmoid", "hardswish",
    "softsign", "tanhshrink", "hardshrink", "softshrink", "threshold",
    "bias_activation", "activation_dropout", "dropout", "prelu", "rrelu",
    "gated", "glu", "swiglu", "clamped_swiglu", "geglu", "reglu", "softmax", "log_softmax",
    "softmin", "cross_entropy",
    "Float8Output", "activation_fp8", "activation_backward_fp8", "bias_activation_fp8",
    "bias_activation_backward_fp8", "gated_fp8", "glu_fp8", "swiglu_fp8", "geglu_fp8",
    "reglu_fp8", "softmax_fp8",
    "BlockScaledFloat8", "bias_activation_block_fp8", "glu_block_fp8", "mxfp8",
    "BlockScaledFloat4", "bias_activation_nvfp4", "glu_nvfp4", "nvfp4",
]
