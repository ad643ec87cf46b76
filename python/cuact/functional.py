"""cuact's operations with torch.nn.functional's names, arguments and defaults.

Every function takes CUDA tensors (float32, float16, bfloat16: cuact's kernels
on the current stream) or CPU tensors (also float64: cuact's double-precision
reference, exact and slow). Non-contiguous inputs are made contiguous first
(softmax also takes 2-D rows with a row stride as they are). `inplace=True`
computes out of place and copies the result into the input.
"""
import math

import torch

ops = torch.ops.cuact
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


def _in_place(input, out, inplace):
    return input.copy_(out) if inplace else out


def activation(input, activation, inplace=False, **params):
    """y = activation(input): any of ACTIVATIONS by name, with its parameters."""
    kind, p = activation_params(activation, **params)
    return _in_place(input, ops.activation(input.contiguous(), kind, p), inplace)


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
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return activation(input, "gelu", approximate=approximate)


# PyTorch's threshold has no defaults: its parameters are required here too.
def threshold(input, threshold, value, inplace=False):
    """x if x > threshold else value."""
    return activation(input, "threshold", inplace, threshold=threshold, value=value)


# ------------------------------------------------------------------ random state

def _seed_offset(device, generator=None):
    """A fresh {seed, offset} pair from PyTorch's generator, on `device` (on a
    CUDA device it is drawn by a kernel, so a captured CUDA graph draws a new
    pair at every replay)."""
    return torch.randint(0, 2**62, (2,), dtype=torch.int64, device=device, generator=generator)


# ------------------------------------------------------------------ fused forms

def bias_activation(input, bias=None, activation="gelu", p=0.0, training=True, generator=None,
                    **params):
    """dropout(activation(input + bias), p) in one pass; bias [input.shape[-1]]
    (the input's dtype, or float32 with 16-bit input) or None. Dropout applies
    when training and p > 0; its mask comes from PyTorch's generator."""
    kind, a = activation_params(activation, **params)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    p = float(p) if training else 0.0
    seed_offset = _seed_offset(input.device, generator) if p > 0 else None
    y, _ = ops.bias_activation(input.contiguous(), bias, kind, a, p, seed_offset)
    return y


def activation_dropout(input, activation="relu", p=0.5, training=True, generator=None, **params):
    """dropout(activation(input), p) in one pass."""
    return bias_activation(input, None, activation, p, training, generator, **params)


def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout (kept values scaled by 1/(1-p)), torch.nn.functional's form."""
    return _in_place(input, activation_dropout(input, "identity", p, training), inplace)


def prelu(input, weight):
    """x if x > 0 else weight[c] * x, channels on dimension 1 (weight of 1 or C)."""
    return ops.prelu(input.contiguous(), weight.contiguous())


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, generator=None):
    """x if x >= 0 else r * x; r ~ U(lower, upper) per element when training,
    (lower + upper) / 2 otherwise."""
    seed_offset = _seed_offset(input.device, generator) if training else None
    y, _ = ops.rrelu(input.contiguous(), float(lower), float(upper), bool(training), seed_offset)
    return _in_place(input, y, inplace)


# ------------------------------------------------------------------ GLU family

def gated(input, activation="sigmoid", dim=-1, gate="first", **params):
    """Splits `input` in halves a | b along `dim`: activation(a) * b
    (gate='first', the SwiGLU order) or a * activation(b) (gate='second', glu)."""
    if gate not in ("first", "second"):
        raise ValueError(f"gate must be 'first' or 'second', got {gate!r}")
    kind, a = activation_params(activation, **params)
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    dim = dim % input.dim()
    last = dim == input.dim() - 1
    x = input if last else input.movedim(dim, -1)
    y = ops.glu(x.contiguous(), kind, a, gate == "first")
    return y if last else y.movedim(-1, dim)


def glu(input, dim=-1):
    """a * sigmoid(b) over the halves of `dim` (torch.nn.functional.glu)."""
    return gated(input, "sigmoid", dim, "second")


def swiglu(input, dim=-1, *, beta=1.0):
    """silu(a) * b."""
    return gated(input, "silu", dim, "first", beta=beta)


def geglu(input, dim=-1, *, approximate="none"):
    """gelu(a) * b (approximate='tanh': the tanh gelu)."""
    return gated(input, "gelu", dim, "first", approximate=approximate)


def reglu(input, dim=-1):
    """relu(a) * b."""
    return gated(input, "relu", dim, "first")


# ------------------------------------------------------------------ softmax family

def _softmax_dim(ndim):
    # torch.nn.functional's implicit choice when dim is None.
    return 0 if ndim in (0, 1, 3) else 1


def _mask_layout(mask, x):
    """(dense [mask_rows, cols] additive mask of x's dtype, mask_rows, mask_row_repeat)
    for a mask that broadcasts to x. A bool mask keeps True (as
    scaled_dot_product_attention's) and hides False."""
    cols = x.shape[-1]
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill_(~mask, -math.inf)
    mask = mask.to(x.dtype)
    if mask.dim() > x.dim():
        raise ValueError(f"the mask's shape {tuple(mask.shape)} does not broadcast to the "
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


def _softmax(input, dim, dtype, kind, scale, mask, causal, causal_offset):
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = _softmax_dim(input.dim())
    if input.dim() == 0:
        input = input.reshape(1)
        return _softmax(input, 0, None, kind, scale, mask, causal, causal_offset).reshape(())
    dim = dim % input.dim()
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
    x = input
    if not (x.dim() == 2 and dim == 1 and x.stride(1) == 1 and x.stride(0) >= x.shape[1]):
        x = x.contiguous()
    return ops.softmax(x, dim, kind, float(scale), mask, mask_rows, repeat, causal_rows,
                       int(causal_offset))


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


__all__ = [
    "activation", "activation_params", "ACTIVATIONS", "ELEMENTWISE_FORMS",
    "relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "gelu", "quick_gelu",
    "sigmoid", "tanh", "silu", "mish", "softplus", "logsigmoid", "hardsigmoid", "hardswish",
    "softsign", "tanhshrink", "hardshrink", "softshrink", "threshold",
    "bias_activation", "activation_dropout", "dropout", "prelu", "rrelu",
    "gated", "glu", "swiglu", "geglu", "reglu", "softmax", "log_softmax", "softmin",
]
