"""Fake (meta) kernels and autograd for the operators of cuact/_C.so.

The schemas and the CPU/CUDA kernels are in csrc/ops.cpp. Every forward
operator's gradient calls cuact's backward operator; the elementwise
activation saves its output y instead of x for sigmoid, tanh, relu and
identity (cuact's backward from the output; see saves_output), and softmax
always saves y.
The random operators (dropout through bias_activation, rrelu) return the
{seed, offset} pair they drew from, which their backward reads.
"""
import torch

ops = torch.ops.cuact
lib = "cuact::"


# ------------------------------------------------------------------ fake kernels

def _random_pair(x):
    return x.new_empty(2, dtype=torch.int64)


@torch.library.register_fake(lib + "activation")
def _(x, kind, params):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "activation_backward")
def _(x, dy, kind, params):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "activation_backward_from_output")
def _(y, dy, kind, params):
    return torch.empty_like(y)


@torch.library.register_fake(lib + "bias_activation")
def _(x, bias, kind, params, p, seed_offset):
    return torch.empty_like(x), _random_pair(x)


@torch.library.register_fake(lib + "bias_activation_backward")
def _(x, bias, dy, kind, params, p, used):
    dbias = torch.empty_like(bias) if bias is not None else x.new_empty(0)
    return torch.empty_like(x), dbias


@torch.library.register_fake(lib + "glu")
def _(x, kind, params, gate_first):
    torch._check(x.dim() >= 1 and x.shape[-1] % 2 == 0, lambda: "the last dimension must be even")
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2))


@torch.library.register_fake(lib + "glu_backward")
def _(x, dy, kind, params, gate_first):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "prelu")
def _(x, weight):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "prelu_backward")
def _(x, weight, dy):
    return torch.empty_like(x), torch.empty_like(weight)


@torch.library.register_fake(lib + "rrelu")
def _(x, lower, upper, training, seed_offset):
    return torch.empty_like(x), _random_pair(x)


@torch.library.register_fake(lib + "rrelu_backward")
def _(x, dy, lower, upper, training, used):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "softmax")
def _(x, dim, kind, scale, mask, mask_rows, mask_row_repeat, causal_rows, causal_offset):
    return x.new_empty(x.shape)  # dense, whatever the input's row stride


@torch.library.register_fake(lib + "softmax_backward")
def _(y, dy, dim, kind, scale):
    return torch.empty_like(y)


# ------------------------------------------------------------------ autograd

def saves_output(kind, params):
    """Whether the activation's gradient takes its output y (cuact's backward
    from the output) rather than x: sigmoid and tanh, as PyTorch's, and relu
    and identity, whose gradient y gives exactly. elu, selu and celu also have
    a backward from the output, but y + alpha cancels for x << 0 (elu(-12)'s
    gradient would lose most of its digits in fp32 and be 0 in bf16), so they
    save x, as PyTorch does out of place."""
    return kind in ("identity", "relu", "sigmoid", "tanh")


def _activation_setup(ctx, inputs, output):
    x, kind, params = inputs
    ctx.kind, ctx.params = kind, params
    ctx.from_output = saves_output(kind, params)
    ctx.save_for_backward(output if ctx.from_output else x)


def _activation_grad(ctx, dy):
    (saved,) = ctx.saved_tensors
    dy = dy.contiguous()
    if ctx.from_output:
        dx = ops.activation_backward_from_output(saved, dy, ctx.kind, ctx.params)
    else:
        dx = ops.activation_backward(saved, dy, ctx.kind, ctx.params)
    return dx, None, None


torch.library.register_autograd(lib + "activation", _activation_grad,
                                setup_context=_activation_setup)


def _bias_activation_setup(ctx, inputs, output):
    x, bias, kind, params, p, _ = inputs
    ctx.kind, ctx.params, ctx.p = kind, params, p
    ctx.has_bias = bias is not None
    ctx.save_for_backward(x, bias, output[1])


def _bias_activation_grad(ctx, dy, _):
    x, bias, used = ctx.saved_tensors
    dx, dbias = ops.bias_activation_backward(x, bias, dy.contiguous(), ctx.kind, ctx.params,
                                             ctx.p, used)
    return dx, (dbias if ctx.has_bias else None), None, None, None, None


torch.library.register_autograd(lib + "bias_activation", _bias_activation_grad,
                                setup_context=_bias_activation_setup)


def _glu_setup(ctx, inputs, output):
    x, kind, params, gate_first = inputs
    ctx.args = (kind, params, gate_first)
    ctx.save_for_backward(x)


def _glu_grad(ctx, dy):
    (x,) = ctx.saved_tensors
    return ops.glu_backward(x, dy.contiguous(), *ctx.args), None, None, None


torch.library.register_autograd(lib + "glu", _glu_grad, setup_context=_glu_setup)


def _prelu_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _prelu_grad(ctx, dy):
    x, weight = ctx.saved_tensors
    dx, dweight = ops.prelu_backward(x, weight, dy.contiguous())
    return dx, dweight


torch.library.register_autograd(lib + "prelu", _prelu_grad, setup_context=_prelu_setup)


def _rrelu_setup(ctx, inputs, output):
    x, lower, upper, training, _ = inputs
    ctx.args = (lower, upper, training)
    ctx.save_for_backward(x, output[1])


def _rrelu_grad(ctx, dy, _):
    x, used = ctx.saved_tensors
    lower, upper, training = ctx.args
    dx = ops.rrelu_backward(x, dy.contiguous(), lower, upper, training,
                            used if training else None)
    return dx, None, None, None, None


torch.library.register_autograd(lib + "rrelu", _rrelu_grad, setup_context=_rrelu_setup)


def _softmax_setup(ctx, inputs, output):
    ctx.dim, ctx.kind, ctx.scale = inputs[1], inputs[2], inputs[3]
    ctx.save_for_backward(output)


def _softmax_grad(ctx, dy):
    (y,) = ctx.saved_tensors
    dx = ops.softmax_backward(y, dy.contiguous(), ctx.dim, ctx.kind, ctx.scale)
    return (dx,) + (None,) * 8  # the mask is not differentiated


torch.library.register_autograd(lib + "softmax", _softmax_grad, setup_context=_softmax_setup)

