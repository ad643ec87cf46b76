"""Derivatives of cuact's operators: reverse mode to any order, forward mode
(jvp) and the torch.func transforms.

Every operator, forward and backward alike, has one rule here (cross_entropy
and moe_glu: a first derivative in reverse mode only, see their rules):
`setup` saves what its derivatives need; `backward` and `jvp` compute them
with cuact's own backward operators and, for second derivatives, the
formulas of docs/SPEC.md ("Second derivatives") in torch operations. Rules
call operators through `call`, so a derivative is itself differentiable.

Two routes share the rules:
  * torch.library.register_autograd on each operator (torch.ops.cuact.*):
    reverse mode, the route torch.compile traces;
  * a torch.autograd.Function per operator (FUNCTIONS): adds forward mode and
    the torch.func transforms (grad, vjp, jvp, jacrev, jacfwd, hessian, vmap),
    which PyTorch does not offer for registered operators. cuact.functional
    takes it in eager mode; under torch.compile it takes the operator (dynamo
    does not trace a Function that defines jvp).
"""
import math

import torch
from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

ops = torch.ops.cuact
_HALF = (torch.float16, torch.bfloat16)


def call(name, *args):
    """Operator `name` of torch.ops.cuact, differentiable by the route that fits."""
    if torch.compiler.is_compiling():
        return getattr(ops, name)(*args)
    return FUNCTIONS[name].apply(*(Params(a) if isinstance(a, list) else a for a in args))


class Params(tuple):
    """An activation's parameter list as one argument: the torch.func
    transforms pass it through whole (a list would be taken apart as a pytree)."""


# ------------------------------------------------------------------ helpers

def _wide(t):
    """t in the precision its derivatives are computed in (fp32 for 16-bit data)."""
    return t.float() if t.dtype in _HALF else t


def _zero_if_none(t, like):
    return torch.zeros_like(like) if t is None else t


def _save(ctx, *tensors):
    """Saves for backward and for jvp (forward mode reads save_for_forward's)."""
    ctx.save_for_backward(*tensors)
    if hasattr(ctx, "save_for_forward"):
        ctx.save_for_forward(*tensors)


def _f32(v):
    """A parameter as cuact holds it (cuact::Activation's fields are fp32)."""
    return float(torch.tensor(float(v), dtype=torch.float32))


def saves_output(kind):
    """Whether the activation's gradient is taken from its output y (cuact's
    backward from the output): sigmoid and tanh, as PyTorch's, and relu and
    identity, whose gradient y gives exactly. elu, selu and celu also have a
    backward from the output, but y + alpha cancels for x << 0 (elu'(-12)
    would lose most digits in fp32 and be 0 in bf16), so they save x."""
    return kind in ("identity", "relu", "sigmoid", "tanh")


# ------------------------------------------------------------------ second derivatives

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946
_QUICK_GELU_BETA = 1.702
_PIECEWISE_LINEAR = {"identity", "relu", "relu6", "hardtanh", "leaky_relu", "hardshrink",
                     "softshrink", "threshold", "hardsigmoid"}


def second_derivative(kind, params, x):
    """f''(x) of activation `kind` (docs/SPEC.md, "Second derivatives"), in
    x's precision (fp32 for 16-bit x); 0 on the linear pieces, NaN for NaN x."""
    alpha, beta, _, _, _, cutoff, _ = (_f32(p) for p in params)
    t = _wide(x)
    zero = torch.zeros_like(t)
    if kind in _PIECEWISE_LINEAR:
        d2 = zero
    elif kind == "hardswish":
        d2 = torch.where(t.abs() < 3, 1.0 / 3.0, zero)
    elif kind in ("elu", "selu"):
        a, lam = (alpha, 1.0) if kind == "elu" else (_SELU_ALPHA, _SELU_LAMBDA)
        d2 = torch.where(t > 0, zero, lam * a * torch.exp(t.clamp(max=0)))
    elif kind == "celu":
        d2 = torch.where(t > 0, zero, torch.exp((t / alpha).clamp(max=0)) / alpha)
    elif kind == "gelu":
        d2 = torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi) * (2 - t * t)
    elif kind == "gelu_tanh":
        k, c = math.sqrt(2 / math.pi), 0.044715
        th = torch.tanh(k * (t + c * t ** 3))
        du, d2u = k * (1 + 3 * c * t * t), 6 * k * c * t
        d2 = (1 - th * th) * (du + 0.5 * t * (d2u - 2 * th * du * du))
    elif kind in ("silu", "quick_gelu"):
        b = beta if kind == "silu" else _QUICK_GELU_BETA
        s = torch.sigmoid(b * t)
        d2 = b * s * (1 - s) * (2 + b * t * (1 - 2 * s))
    elif kind == "sigmoid":
        s = torch.sigmoid(t)
        d2 = s * (1 - s) * (1 - 2 * s)
    elif kind in ("tanh", "tanhshrink"):
        th = torch.tanh(t)
        d2 = (-2 if kind == "tanh" else 2) * th * (1 - th * th)
    elif kind == "mish":
        s = torch.sigmoid(t)
        tsp = torch.tanh(torch.nn.functional.softplus(t))
        d2 = (1 - tsp * tsp) * s * (2 + t * (1 - s - 2 * tsp * s))
    elif kind == "softplus":
        s = torch.sigmoid(beta * t)
        d2 = torch.where(beta * t > cutoff, zero, beta * s * (1 - s))
    elif kind == "log_sigmoid":
        s = torch.sigmoid(t)
        d2 = -s * (1 - s)
    elif kind == "softsign":
        d2 = -2 * torch.sign(t) / (1 + t.abs()) ** 3
    else:
        raise NotImplementedError(f"cuact: no second derivative for {kind!r}")
    return torch.where(t.isnan(), t, d2)


def output_slope_derivative(kind, params, y):
    """d/dy of h(y) = f'(f^-1(y)), the factor cuact's backward from the output
    multiplies dy by (its kinds only)."""
    t = _wide(y)
    zero = torch.zeros_like(t)
    if kind in ("identity", "relu"):
        return zero
    if kind == "sigmoid":
        return 1 - 2 * t
    if kind == "tanh":
        return -2 * t
    if kind in ("elu", "selu"):
        return torch.where(t > 0, zero, torch.ones_like(t))
    if kind == "celu":
        return torch.where(t > 0, zero, torch.full_like(t, 1 / _f32(params[0])))
    raise NotImplementedError(f"cuact: {kind} has no backward from the output")


def _times(*factors, like):
    """The product of the factors (None: 0) in like's precision, cast to like's dtype."""
    if any(f is None for f in factors):
        return None
    out = _wide(factors[0])
    for f in factors[1:]:
        out = out * _wide(f)
    return out.to(like.dtype)


def _add(*terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


# ------------------------------------------------------------------ rules

class Rule:
    """setup(ctx, inputs, output); backward(ctx, *grads) -> input grads;
    jvp(ctx, *tangents) -> output tangents. `random`: the operator's second
    output is its {seed, offset} pair (not differentiable)."""

    def __init__(self, setup, backward, jvp, random=False):
        self.setup, self.backward, self.jvp, self.random = setup, backward, jvp, random


RULES = {}


def _rule(name, random=False):
    def register(cls):
        RULES[name] = Rule(cls.setup, cls.backward, cls.jvp, random)
        return cls
    return register


@_rule("activation")
class _Activation:
    @staticmethod
    def setup(ctx, inputs, output):
        x, ctx.kind, ctx.params = inputs
        ctx.from_output = saves_output(ctx.kind)
        _save(ctx, output if ctx.from_output else x)

    @staticmethod
    def backward(ctx, dy):
        (saved,) = ctx.saved_tensors
        name = "activation_backward_from_output" if ctx.from_output else "activation_backward"
        return call(name, saved, dy.contiguous(), ctx.kind, ctx.params), None, None

    @staticmethod
    def jvp(ctx, tx, *_):
        return _Activation.backward(ctx, tx)[0]


def _slope_times_rule(name, slope_derivative):
    """The rule of an operator dx = h(in) * dy (activation_backward: h = f'
    at x; from the output: h at y): in `in` its derivative is h'(in) * dy,
    in dy the operator itself."""
    class Slope:
        @staticmethod
        def setup(ctx, inputs, output):
            i, dy, ctx.kind, ctx.params = inputs
            _save(ctx, i, dy)

        @staticmethod
        def backward(ctx, g):
            i, dy = ctx.saved_tensors
            gi = gdy = None
            if ctx.needs_input_grad[0]:
                gi = _times(g, dy, slope_derivative(ctx.kind, ctx.params, i), like=i)
            if ctx.needs_input_grad[1]:
                gdy = call(name, i, g.contiguous(), ctx.kind, ctx.params)
            return gi, gdy, None, None

        @staticmethod
        def jvp(ctx, ti, tdy, *_):
            i, dy = ctx.saved_tensors
            return _add(None if ti is None else _times(
                            ti, dy, slope_derivative(ctx.kind, ctx.params, i), like=i),
                        None if tdy is None else call(name, i, tdy.contiguous(), ctx.kind,
                                                      ctx.params))

    _rule(name)(Slope)


_slope_times_rule("activation_backward", second_derivative)
_slope_times_rule("activation_backward_from_output", output_slope_derivative)


# bias + activation (+ dropout): z = x + bias (bias over the last dimension),
# y = m * f(z) with m the dropout's kept-and-scaled factor (0 or 1/(1-p)).

def _rows_sum(t, bias):
    """t summed over every dimension but the last (bias's gradient)."""
    return t.reshape(-1, t.shape[-1]).sum(0).to(bias.dtype) if t.dim() else t.reshape(1)


def _dropout_factor(x, ctx):
    """m of the forward's draw (None without dropout), in x's precision."""
    if ctx.p == 0.0:
        return None
    ident = [math.nan] * 7
    with torch.no_grad():
        m, _ = ops.bias_activation_backward(torch.zeros_like(x), None, torch.ones_like(x),
                                            "identity", ident, ctx.p, ctx.used)
    return m


def _z(x, bias):
    return _wide(x) if bias is None else _wide(x) + _wide(bias)


def _bias_setup(ctx, inputs, n_saved):
    ctx.kind, ctx.params, ctx.p = inputs[n_saved], inputs[n_saved + 1], inputs[n_saved + 2]
    ctx.has_bias = inputs[1] is not None


@_rule("bias_activation", random=True)
class _BiasActivation:
    @staticmethod
    def setup(ctx, inputs, output):
        x, bias = inputs[0], inputs[1]
        _bias_setup(ctx, inputs, 2)
        ctx.used = output[1]
        _save(ctx, x, bias, output[1])

    @staticmethod
    def backward(ctx, dy, _):
        x, bias, used = ctx.saved_tensors
        dx, dbias = call("bias_activation_backward", x, bias, dy.contiguous(), ctx.kind,
                         ctx.params, ctx.p, used)
        return dx, (dbias if ctx.has_bias else None), None, None, None, None

    @staticmethod
    def jvp(ctx, tx, tbias, *_):
        x, bias, used = ctx.saved_tensors
        tz = _add(tx, tbias)
        if tz is None:
            return None, None
        tz = tz.expand(x.shape).contiguous().to(x.dtype)
        dx, _ = call("bias_activation_backward", x, bias, tz, ctx.kind, ctx.params, ctx.p, used)
        return dx, None


@_rule("bias_activation_backward")
class _BiasActivationBackward:
    @staticmethod
    def setup(ctx, inputs, output):
        x, bias, dy = inputs[0], inputs[1], inputs[2]
        _bias_setup(ctx, inputs, 3)
        ctx.used = inputs[6]
        _save(ctx, x, bias, dy, inputs[6])

    @staticmethod
    def backward(ctx, gdx, gdbias):
        x, bias, dy, used = ctx.saved_tensors
        ctx.used = used
        g = _add(gdx, None if gdbias is None or not ctx.has_bias else gdbias.expand(x.shape))
        if g is None:
            return (None,) * 7
        gx = gbias = gdy = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            m = _dropout_factor(x, ctx)
            d2 = second_derivative(ctx.kind, ctx.params, _z(x, bias))
            gx = _times(g, dy, d2, *(() if m is None else (m,)), like=x)
            if ctx.has_bias and ctx.needs_input_grad[1]:
                gbias = _rows_sum(gx, bias)
        if ctx.needs_input_grad[2]:
            gdy, _ = call("bias_activation_backward", x, bias, g.contiguous(), ctx.kind,
                          ctx.params, ctx.p, used)
        return gx, gbias, gdy, None, None, None, None

    @staticmethod
    def jvp(ctx, tx, tbias, tdy, *_):
        x, bias, dy, used = ctx.saved_tensors
        ctx.used = used
        tz = _add(tx, tbias)
        t = None
        if tz is not None:
            m = _dropout_factor(x, ctx)
            d2 = second_derivative(ctx.kind, ctx.params, _z(x, bias))
            t = _times(tz.expand(x.shape), dy, d2, *(() if m is None else (m,)), like=x)
        if tdy is not None:
            t = _add(t, call("bias_activation_backward", x, bias, tdy.contiguous(), ctx.kind,
                             ctx.params, ctx.p, used)[0])
        if t is None:
            return None, None
        return t, (_rows_sum(t, bias) if ctx.has_bias else t.new_empty(0))


# GLU: x = [first | second] halves of the last dimension; the gate g is one
# half, the other o; y = f(g) * o.

def _halves(t, gate_first):
    a, b = t.chunk(2, dim=-1)
    return (a, b) if gate_first else (b, a)


def _join(g, o, gate_first):
    return torch.cat((g, o) if gate_first else (o, g), dim=-1)


def _glu_pieces(ctx, x):
    g, o = _halves(x, ctx.gate_first)
    g = g.contiguous()
    f = call("activation", g, ctx.kind, ctx.params)
    f1 = call("activation_backward", g, torch.ones_like(g), ctx.kind, ctx.params)
    return g, o, f, f1


@_rule("glu")
class _Glu:
    @staticmethod
    def setup(ctx, inputs, output):
        x, ctx.kind, ctx.params, ctx.gate_first = inputs
        _save(ctx, x)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return call("glu_backward", x, dy.contiguous(), ctx.kind, ctx.params,
                    ctx.gate_first), None, None, None

    @staticmethod
    def jvp(ctx, tx, *_):
        (x,) = ctx.saved_tensors
        g, o, f, f1 = _glu_pieces(ctx, x)
        tg, to = _halves(tx, ctx.gate_first)
        return _add(_times(f1, o, tg, like=x), _times(f, to, like=x))


@_rule("glu_backward")
class _GluBackward:
    @staticmethod
    def setup(ctx, inputs, output):
        x, dy, ctx.kind, ctx.params, ctx.gate_first = inputs
        _save(ctx, x, dy)

    @staticmethod
    def backward(ctx, gdx):
        x, dy = ctx.saved_tensors
        g, o, f, f1 = _glu_pieces(ctx, x)
        d2 = second_derivative(ctx.kind, ctx.params, g)
        Gg, Go = _halves(gdx, ctx.gate_first)
        gx = _join(_add(_times(Gg, d2, o, dy, like=x), _times(Go, f1, dy, like=x)),
                   _times(Gg, f1, dy, like=x), ctx.gate_first)
        gdy = _add(_times(Gg, f1, o, like=x), _times(Go, f, like=x))
        return gx, gdy, None, None, None

    @staticmethod
    def jvp(ctx, tx, tdy, *_):
        x, dy = ctx.saved_tensors
        g, o, f, f1 = _glu_pieces(ctx, x)
        d2 = second_derivative(ctx.kind, ctx.params, g)
        tx = _zero_if_none(tx, x)
        tdy = _zero_if_none(tdy, dy)
        tg, to = _halves(tx, ctx.gate_first)
        t_g = _add(_times(d2, o, dy, tg, like=x), _times(f1, dy, to, like=x),
                   _times(f1, o, tdy, like=x))
        t_o = _add(_times(f1, dy, tg, like=x), _times(f, tdy, like=x))
        return _join(t_g, t_o, ctx.gate_first)


# PReLU: y = x if x > 0 else w[c] x, channels on dimension 1.

def _per_channel(w, x):
    """w shaped to broadcast over x's channels (dimension 1; one weight: all)."""
    if w.numel() == 1 or x.dim() < 2:
        return w.reshape(())
    return w.reshape((-1,) + (1,) * (x.dim() - 2))


def _to_weight(t, w):
    """t summed to w's shape (over everything but the channels)."""
    if w.numel() == 1:
        return t.sum().reshape(w.shape)
    return t.sum([d for d in range(t.dim()) if d != 1]).reshape(w.shape)


@_rule("prelu")
class _Prelu:
    @staticmethod
    def setup(ctx, inputs, output):
        _save(ctx, *inputs)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        return call("prelu_backward", x, w, dy.contiguous())

    @staticmethod
    def jvp(ctx, tx, tw):
        x, w = ctx.saved_tensors
        wc = _per_channel(w, x)
        neg = x <= 0
        t = None
        if tx is not None:
            t = torch.where(neg, wc * tx, tx)
        if tw is not None:
            t = _add(t, torch.where(neg, x * _per_channel(tw, x), 0.0).to(x.dtype))
        return t


@_rule("prelu_backward")
class _PreluBackward:
    @staticmethod
    def setup(ctx, inputs, output):
        _save(ctx, *inputs)

    @staticmethod
    def backward(ctx, gdx, gdw):
        x, w, dy = ctx.saved_tensors
        neg = (x <= 0).to(x.dtype)
        wc = _per_channel(w, x)
        gx = gw = gdy = None
        if gdw is not None:
            gdwc = _per_channel(gdw, x)
            gx = gdwc * dy * neg
            gdy = gdwc * x * neg
        if gdx is not None:
            gw = _to_weight(gdx * dy * neg, w)
            gdy = _add(gdy, torch.where(x > 0, gdx, wc * gdx))
        return gx, gw, gdy

    @staticmethod
    def jvp(ctx, tx, tw, tdy):
        x, w, dy = ctx.saved_tensors
        neg = (x <= 0).to(x.dtype)
        wc = _per_channel(w, x)
        tdx = tdw_terms = None
        if tdy is not None:
            tdx = torch.where(x > 0, tdy, wc * tdy)
            tdw_terms = tdy * x * neg
        if tw is not None:
            tdx = _add(tdx, _per_channel(tw, x) * dy * neg)
        if tx is not None:
            tdw_terms = _add(tdw_terms, dy * tx * neg)
        tdx = _zero_if_none(tdx, x)
        tdw = torch.zeros_like(w) if tdw_terms is None else _to_weight(tdw_terms, w)
        return tdx, tdw


# RReLU: y = x if x >= 0 else r x (r drawn per element when training).

def _rrelu_slope_times(ctx, x, used, t):
    return call("rrelu_backward", x, t.contiguous(), ctx.lower, ctx.upper, ctx.training,
                used if ctx.training else None)


@_rule("rrelu", random=True)
class _Rrelu:
    @staticmethod
    def setup(ctx, inputs, output):
        x, ctx.lower, ctx.upper, ctx.training, _ = inputs
        _save(ctx, x, output[1])

    @staticmethod
    def backward(ctx, dy, _):
        x, used = ctx.saved_tensors
        return _rrelu_slope_times(ctx, x, used, dy), None, None, None, None

    @staticmethod
    def jvp(ctx, tx, *_):
        x, used = ctx.saved_tensors
        return _rrelu_slope_times(ctx, x, used, tx), None


@_rule("rrelu_backward")
class _RreluBackward:
    @staticmethod
    def setup(ctx, inputs, output):
        x, _, ctx.lower, ctx.upper, ctx.training, used = inputs
        _save(ctx, x, used)

    @staticmethod
    def backward(ctx, g):
        x, used = ctx.saved_tensors  # dx is linear in dy and piecewise constant in x
        return None, _rrelu_slope_times(ctx, x, used, g), None, None, None, None

    @staticmethod
    def jvp(ctx, tx, tdy, *_):
        x, used = ctx.saved_tensors
        return None if tdy is None else _rrelu_slope_times(ctx, x, used, tdy)


# Softmax family along dim: z = c x + m (c = scale, softmin: -scale; m the
# additive mask on the last dimension); y = softmax(z) or log_softmax(z).

def _softmax_p(y, kind):
    """The probabilities p (exp(y) for log_softmax), in the derivatives' precision."""
    return torch.exp(_wide(y)) if kind == "log_softmax" else _wide(y)


def _mask_rows_sum(t, ctx):
    """t ([rows..., cols], the mask's dimension last) summed onto the dense mask
    [mask_rows, cols]: data row r reads mask row (r // repeat) % mask_rows."""
    cols = t.shape[-1]
    return t.reshape(-1, ctx.mask_rows, ctx.mask_row_repeat, cols).sum((0, 2))


def _mask_rows_expand(m, ctx, like):
    """The dense mask's rows [mask_rows, cols] laid over the data rows of `like`."""
    cols = like.shape[-1]
    pre = like.numel() // (ctx.mask_rows * ctx.mask_row_repeat * cols) if like.numel() else 0
    full = m.reshape(1, ctx.mask_rows, 1, cols).expand(pre, ctx.mask_rows, ctx.mask_row_repeat,
                                                          cols)
    return full.reshape(like.shape)


def _hidden_args(ctx, mask):
    """The forward's mask and causal settings, as softmax_backward takes them:
    they decide its hidden columns. The mask enters only through which entries
    are -inf (piecewise constant): its gradient comes from the forward's rule."""
    return (None if mask is None else mask.detach(), ctx.mask_rows, ctx.mask_row_repeat,
            ctx.causal_rows, ctx.causal_offset)


def _hidden_columns(ctx, mask, like):
    """The columns the forward hid (bool, like's shape), as cuact's backward
    decides them: where the mask is -inf or causal hides the column, never
    from y (a visible column whose y saturated to -inf or 0 stays visible).
    None when nothing is hidden. Mask and causal apply to the last dimension."""
    hidden = None
    if like.numel() == 0:
        return None
    if mask is not None:
        hidden = _mask_rows_expand(mask == -math.inf, ctx, like)
    if ctx.causal_rows > 0:
        cols = like.shape[-1]
        i = torch.arange(like.numel() // cols, device=like.device) % ctx.causal_rows
        j = torch.arange(cols, device=like.device)
        causal = (j.unsqueeze(0) > i.unsqueeze(1) + ctx.causal_offset).reshape(like.shape)
        hidden = causal if hidden is None else hidden | causal
    return hidden


def _visible(t, hidden):
    return t if hidden is None else t.where(~hidden, 0.0)


def _softmax_z_tangent_to_y(y, tz, dim, kind, hidden):
    """The tangent of y for a tangent tz of z (0 at hidden columns)."""
    p = _softmax_p(y, kind)
    tz = _visible(_wide(tz), hidden)
    if kind == "log_softmax":
        return _visible(tz - (p * tz).sum(dim, keepdim=True), hidden).to(y.dtype)
    return (p * (tz - (p * tz).sum(dim, keepdim=True))).to(y.dtype)


@_rule("softmax")
class _Softmax:
    @staticmethod
    def setup(ctx, inputs, output):
        (x, ctx.dim, ctx.kind, ctx.scale, mask, ctx.mask_rows, ctx.mask_row_repeat,
         ctx.causal_rows, ctx.causal_offset) = inputs
        _save(ctx, output, mask)

    @staticmethod
    def backward(ctx, dy):
        y, mask = ctx.saved_tensors
        dy = dy.contiguous()
        hidden = _hidden_args(ctx, mask)
        dx = call("softmax_backward", y, dy, ctx.dim, ctx.kind, ctx.scale, *hidden) \
            if ctx.needs_input_grad[0] else None
        dmask = None
        if ctx.needs_input_grad[4]:
            # d/dm is the Jacobian of y in z (scale 1, the sign of softmax)
            kind = "softmax" if ctx.kind == "softmin" else ctx.kind
            dz = call("softmax_backward", y, dy, ctx.dim, kind, 1.0, *hidden)
            dmask = _mask_rows_sum(dz, ctx)
        return (dx, None, None, None, dmask) + (None,) * 4

    @staticmethod
    def jvp(ctx, tx, _dim, _kind, _scale, tmask, *_):
        y, mask = ctx.saved_tensors
        c = -ctx.scale if ctx.kind == "softmin" else ctx.scale
        tz = None if tx is None else _wide(tx) * c
        if tmask is not None:
            tm = _mask_rows_expand(_wide(tmask), ctx, y)
            tz = tm if tz is None else tz + tm
        if tz is None:
            return torch.zeros_like(y)
        return _softmax_z_tangent_to_y(y, tz.reshape(y.shape), ctx.dim, ctx.kind,
                                       _hidden_columns(ctx, mask, y))


@_rule("softmax_backward")
class _SoftmaxBackward:
    """dx = c y (dy - sum(y dy)) (softmax, softmin: c = -scale), or
    c (dy - p sum(dy)) with p = exp(y) (log_softmax), dy read as 0 at the
    columns the forward's mask and causal settings hide, where dx is 0; see
    softmax_backward_row in the reference."""

    @staticmethod
    def setup(ctx, inputs, output):
        (y, dy, ctx.dim, ctx.kind, ctx.scale, mask, ctx.mask_rows, ctx.mask_row_repeat,
         ctx.causal_rows, ctx.causal_offset) = inputs
        _save(ctx, y, dy, mask)

    @staticmethod
    def _c(ctx):
        return -ctx.scale if ctx.kind == "softmin" else ctx.scale

    @staticmethod
    def backward(ctx, g):
        y, dy, mask = ctx.saved_tensors
        c, d = _SoftmaxBackward._c(ctx), ctx.dim
        p = _softmax_p(y, ctx.kind)
        hidden = _hidden_columns(ctx, mask, y)
        # dx is 0 at hidden columns whatever y and dy: g there reaches nothing
        g_, dy_ = _visible(_wide(g), hidden), _visible(_wide(dy), hidden)
        if ctx.kind == "log_softmax":
            gy = -c * g_ * p * dy_.sum(d, keepdim=True)
            gdy = c * (g_ - (g_ * p).sum(d, keepdim=True))
        else:
            s = (dy_ * p).sum(d, keepdim=True)
            gy = c * (g_ * (dy_ - s) - dy_ * (g_ * p).sum(d, keepdim=True))
            gdy = c * p * (g_ - (g_ * p).sum(d, keepdim=True))
        gy, gdy = _visible(gy, hidden), _visible(gdy, hidden)
        return (gy.to(y.dtype), gdy.to(y.dtype)) + (None,) * 8

    @staticmethod
    def jvp(ctx, ty, tdy, *_):
        y, dy, mask = ctx.saved_tensors
        c, d = _SoftmaxBackward._c(ctx), ctx.dim
        p = _softmax_p(y, ctx.kind)
        hidden = _hidden_columns(ctx, mask, y)
        ty_ = _visible(_wide(_zero_if_none(ty, y)), hidden)
        tdy_ = _visible(_wide(_zero_if_none(tdy, dy)), hidden)
        dy_ = _visible(_wide(dy), hidden)
        if ctx.kind == "log_softmax":
            t = c * (tdy_ - p * tdy_.sum(d, keepdim=True) - p * ty_ * dy_.sum(d, keepdim=True))
        else:
            s = (dy_ * p).sum(d, keepdim=True)
            t = c * (ty_ * (dy_ - s) + p * (tdy_ - (tdy_ * p).sum(d, keepdim=True)
                                          - (dy_ * ty_).sum(d, keepdim=True)))
        return _visible(t, hidden).to(y.dtype)


# Cross-entropy (the fused forward): dlogits, the gradient of the reduced loss
# (none: of the rows' sum), comes out of the forward itself; the input's
# gradient is dlogits times the loss's upstream gradient. Only the logits
# have a derivative: lse, z_loss and dlogits are results to read (marked
# non-differentiable), a weight that requires grad is refused when the
# backward runs (PyTorch's nll_loss refuses it too), the targets are integers. There is no second
# derivative and no forward mode: both raise rather than come out zero.

def _once_differentiable(what):
    return f"cuact.{what} has no second derivative (its backward is once differentiable)"


def _no_second_derivative(backward, what):
    """backward run without grad mode, its results marked so that
    differentiating them raises. torch.autograd.function.once_differentiable
    marks them only where the incoming gradients require grad; with
    create_graph=True and plain ones (torch.autograd.grad(loss, x,
    create_graph=True)) its results would be constants, and a gradient
    penalty or a meta-learning step through them would get zeros silently."""
    message = _once_differentiable(what)

    def wrapped(ctx, *grads):
        with torch.no_grad():
            out = backward(ctx, *grads)
        if not torch.is_grad_enabled() or torch.compiler.is_compiling():
            return out
        if torch._C._functorch.is_functorch_wrapped_tensor(grads[0]):
            # torch.func's grad runs every backward with grad mode on; only a
            # second, enclosing grad transform differentiates the results
            # again, and its wrapped tensors cannot carry a delayed error
            grad_levels = [i for i in retrieve_all_functorch_interpreters()
                           if i.key() == TransformType.Grad]
            if len(grad_levels) > 1:
                raise NotImplementedError(message)
            return out
        tensors = [t for t in out if t is not None]
        err = torch._C._functions.DelayedError(message.encode(), len(tensors))
        marked = err(*(t.detach().requires_grad_() for t in tensors))
        marked = iter(marked if isinstance(marked, tuple) else (marked,))
        return tuple(None if t is None else next(marked) for t in out)
    return wrapped


def _no_forward_mode(what):
    """A jvp that raises: the operator has no forward-mode derivative."""
    def jvp(ctx, *tangents):
        raise NotImplementedError(f"cuact.{what} has no forward-mode derivative (jvp, "
                                  "torch.func.jvp, jacfwd): use reverse mode")
    return staticmethod(jvp)


def _cross_entropy_backward(ctx, dloss, *_):
    if ctx.needs_input_grad[2]:  # the weight (as PyTorch's nll_loss refuses it)
        raise RuntimeError("cuact.cross_entropy is not differentiable with respect to argument "
                           "'weight': it cannot have requires_grad True (pass weight.detach())")
    (dlogits,) = ctx.saved_tensors
    # dloss (float32: 0-d, or one per row for none) times the rows of dlogits
    # in float32 (a [*, 1] factor takes part in the type promotion, a 0-d one
    # would not), rounded once to the logits' dtype: in place on CUDA, the
    # kernel casts as it stores (no float32 copy of dlogits)
    dx = dlogits.clone(memory_format=torch.contiguous_format)
    return (dx.mul_(dloss.reshape(-1, 1)),) + (None,) * 10


@_rule("cross_entropy")
class _CrossEntropy:
    @staticmethod
    def setup(ctx, inputs, output):
        ctx.mark_non_differentiable(*output[1:])
        ctx.save_for_backward(output[3])

    backward = staticmethod(_no_second_derivative(_cross_entropy_backward, "cross_entropy"))

    jvp = _no_forward_mode("cross_entropy")


# cross_entropy with inplace_backward=True (cuact.functional.cross_entropy):
# the operator cross_entropy_inplace writes dlogits over the logits and bumps
# their version counter (csrc/ops.cpp), so a node that saved the old logits
# raises "modified by an inplace operation" in its backward. The Function
# saves the logits (now dlogits) and its backward scales them in place by the
# upstream gradient and returns them: no [N, C] buffer beyond the logits.
# The input is not marked dirty (autograd refuses a Function that modifies a
# view in place and returns more than one tensor, and logits are often a
# view: a padded vocabulary's rows, one row of a batch); the callers refuse a
# leaf that requires grad (or a view of one) instead. A second backward
# through the same graph raises (the saved tensor was scaled in place), and
# so do a second derivative and forward mode.

def _cross_entropy_inplace_backward(ctx, dloss, *_):
    if ctx.needs_input_grad[2]:
        raise RuntimeError("cuact.cross_entropy is not differentiable with respect to argument "
                           "'weight': it cannot have requires_grad True (pass weight.detach())")
    (dlogits,) = ctx.saved_tensors
    dx = dlogits.detach()
    rows = dx if dx.dim() == 2 else dx.view(1, -1)
    rows.mul_(dloss.reshape(-1, 1))  # as _cross_entropy_backward, without the copy
    return (dx,) + (None,) * 10


class CrossEntropyInplace(torch.autograd.Function):
    """cuact.cross_entropy_inplace as a differentiable function of the logits
    [N, C] (or [C]): returns (loss, z_loss rows); the logits hold dlogits
    afterwards."""

    @staticmethod
    def forward(logits, targets, weight, ignore_index, reduction, label_smoothing, smoothing,
                z_loss, softcap, logit_scale, empty_mean_is_zero):
        rows = logits if logits.dim() == 2 else logits.view(1, -1)
        loss, _, z_rows = ops.cross_entropy_inplace(rows, targets, weight, ignore_index,
                                                    reduction, label_smoothing, smoothing, z_loss,
                                                    softcap, logit_scale, empty_mean_is_zero)
        return loss, z_rows

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(inputs[0])

    backward = staticmethod(_no_second_derivative(_cross_entropy_inplace_backward,
                                                  "cross_entropy"))


# The GLU of MoE experts (moe_glu: clamps and a routing weight per row): a
# first derivative, in x and the weight, through moe_glu_backward. The clamps'
# kinks and the weight's product make a second derivative a rule of its own,
# which cuact does not have: it raises, and so does forward mode (never zeros).

# Expert rows (counts or offsets) pass to the backward as they are: its dx
# and dweight are zeros outside the valid rows, as the forward's y.

def _moe_glu_backward(ctx, dy, *_):
    x, weight, counts, offsets = ctx.saved_tensors
    need_dweight = weight is not None and ctx.needs_input_grad[1]
    dx, dweight = call("moe_glu_backward", x, weight, dy.contiguous(), ctx.kind, ctx.params,
                       ctx.gate_first, ctx.limit, ctx.offset, need_dweight, ctx.interleave,
                       counts, offsets)
    return (dx if ctx.needs_input_grad[0] else None,
            dweight if need_dweight else None) + (None,) * (ctx.inputs - 2)


@_rule("moe_glu")
class _MoeGlu:
    @staticmethod
    def setup(ctx, inputs, output):
        # the trailing arguments (interleave, counts, offsets) may be left to their defaults
        x, weight, ctx.kind, ctx.params, ctx.gate_first, ctx.limit, ctx.offset = inputs[:7]
        ctx.interleave, counts, offsets = (*inputs[7:], *(0, None, None)[len(inputs) - 7:])
        ctx.inputs = len(inputs)
        ctx.save_for_backward(x, weight, counts, offsets)

    backward = staticmethod(_no_second_derivative(_moe_glu_backward, "moe_glu"))
    jvp = _no_forward_mode("moe_glu")


@_rule("moe_glu_backward")
class _MoeGluBackward:
    """Reached only by differentiating the operator itself (moe_glu's rule runs
    it without recording)."""

    @staticmethod
    def setup(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_once_differentiable("moe_glu"))

    jvp = _no_forward_mode("moe_glu_backward")


# ------------------------------------------------------------------ the two routes

def _setup_for(rule):
    def setup(ctx, inputs, output):
        if rule.random:
            ctx.mark_non_differentiable(output[1])
        rule.setup(ctx, inputs, output)
    return setup


def _function(name, rule):
    op = getattr(ops, name)
    return type(f"cuact_{name}", (torch.autograd.Function,), {
        "forward": staticmethod(lambda *args: op(*args)),
        "setup_context": staticmethod(_setup_for(rule)),
        "backward": staticmethod(rule.backward),
        "jvp": staticmethod(rule.jvp),
        "generate_vmap_rule": True,
    })


FUNCTIONS = {name: _function(name, rule) for name, rule in RULES.items()}

for _name, _rule_ in RULES.items():
    torch.library.register_autograd("cuact::" + _name, _rule_.backward,
                                    setup_context=_setup_for(_rule_))


# ------------------------------------------------------------------ fp8 outputs

# The *_fp8 and *_block_fp8 operators' outputs carry no gradient (a quantized
# result is an input to the next GEMM, not a point to differentiate through). A call that
# would record one (grad mode on, an input requiring grad) is refused when it
# is made, as PyTorch refuses out= operators then: a result outside the graph
# would drop that path's gradient without a word.
FP8_OPERATORS = ("activation_fp8", "activation_backward_fp8",
                 "activation_backward_from_output_fp8", "bias_activation_fp8",
                 "bias_activation_backward_fp8", "glu_fp8", "softmax_fp8",
                 "bias_activation_block_fp8", "glu_block_fp8")


def refuse_gradient(name):
    return (f"cuact.{name}(): fp8 outputs carry no gradient, but one of the arguments requires "
            "grad: pass it detached (x.detach()) or call under torch.no_grad()")


def _fp8_setup(name):
    def setup(ctx, inputs, output):
        raise RuntimeError(refuse_gradient(name))
    return setup


def _fp8_backward(ctx, *grads):  # not reached: setup refuses first
    raise RuntimeError("cuact: fp8 outputs carry no gradient")


for _name in FP8_OPERATORS:
    torch.library.register_autograd("cuact::" + _name, _fp8_backward,
                                    setup_context=_fp8_setup(_name))
