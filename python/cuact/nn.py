"""torch.nn modules over cuact.functional, with torch.nn's names and arguments."""
import torch

from . import functional as F


class _Elementwise(torch.nn.Module):
    """An activation module: forward(x) = F.activation(x, kind, **params)."""
    kind = "identity"
    keywords = ()

    def __init__(self, *args, inplace=False, **kwargs):
        super().__init__()
        names = self.keywords + ("inplace",)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} arguments")
        kwargs.update(zip(names, args))
        self.inplace = kwargs.pop("inplace", inplace)
        F.activation_params(self.kind, **kwargs)  # fails here on a bad keyword
        self.params = kwargs

    def forward(self, input):
        return F.activation(input, self.kind, self.inplace, **self.params)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.params.items())


# ReLU, LeakyReLU, Softplus, ...: one module per row of F.ELEMENTWISE_FORMS.
for _kind, _keywords, _module, _ in F.ELEMENTWISE_FORMS.values():
    globals()[_module] = type(_module, (_Elementwise,), {
        "kind": _kind, "keywords": _keywords,
        "__doc__": f"cuact's {_kind} (torch.nn.{_module}'s arguments)."})


class GELU(torch.nn.Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)


class PReLU(torch.nn.Module):
    """Learnable per-channel (or single) negative slope, initialised to `init`."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.full((num_parameters,), float(init), device=device,
                                                    dtype=dtype))

    def forward(self, input):
        return F.prelu(input, self.weight)


class RReLU(torch.nn.Module):
    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)


class Dropout(torch.nn.Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class BiasActivation(torch.nn.Module):
    """dropout(activation(x + bias), p) with a learnable bias of `features`."""

    def __init__(self, features, activation="gelu", p=0.0, device=None, dtype=None, **params):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(features, device=device, dtype=dtype))
        self.activation, self.p, self.params = activation, p, params
        F.activation_params(activation, **params)

    def forward(self, input):
        return F.bias_activation(input, self.bias, self.activation, self.p, self.training,
                                 **self.params)


class _Gated(torch.nn.Module):
    """F.gated with the class's activation and gate; params: the activation's
    and F.gated's limit, offset and interleave. forward's weight: a routing
    weight per row; counts / offsets: the expert rows, F.gated's."""
    activation, gate = "sigmoid", "second"

    def __init__(self, dim=-1, **params):
        super().__init__()
        self.dim, self.params = dim, params

    def forward(self, input, weight=None, counts=None, offsets=None):
        return F.gated(input, self.activation, self.dim, self.gate, weight=weight, counts=counts,
                       offsets=offsets, **self.params)


class GLU(_Gated):
    activation, gate = "sigmoid", "second"


class SwiGLU(_Gated):
    activation, gate = "silu", "first"


class GeGLU(_Gated):
    activation, gate = "gelu", "first"


class ReGLU(_Gated):
    activation, gate = "relu", "first"


class ClampedSwiGLU(_Gated):
    """F.clamped_swiglu (gpt-oss's MoE experts): forward(input, weight=None,
    counts=None, offsets=None); interleave=1 for gpt-oss's layout of the
    halves (x[..., ::2] the gate)."""
    activation, gate = "silu", "first"

    def __init__(self, dim=-1, *, alpha=1.702, limit=7.0, offset=1.0, interleave=0):
        super().__init__(dim, beta=alpha, limit=limit, offset=offset, interleave=interleave)


class _SoftmaxModule(torch.nn.Module):
    function = staticmethod(F.softmax)

    def __init__(self, dim=None, *, scale=1.0):
        super().__init__()
        self.dim, self.scale = dim, scale

    def forward(self, input, mask=None, causal=False):
        return self.function(input, self.dim, scale=self.scale, mask=mask, causal=causal)


class Softmax(_SoftmaxModule):
    function = staticmethod(F.softmax)


class LogSoftmax(_SoftmaxModule):
    function = staticmethod(F.log_softmax)


class Softmin(_SoftmaxModule):
    function = staticmethod(F.softmin)


class CrossEntropyLoss(torch.nn.Module):
    """F.cross_entropy as a module: torch.nn.CrossEntropyLoss's weight (a
    buffer), ignore_index, reduction and label_smoothing (not its deprecated
    size_average and reduce), and cuact's options as keywords (inplace_backward
    too: the input is overwritten by its gradient, see F.cross_entropy)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, *,
                 smoothing="pytorch", z_loss=0.0, softcap=0.0, logit_scale=1.0,
                 empty_mean_is_zero=False, return_z_loss=False, inplace_backward=False):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.options = dict(smoothing=smoothing, z_loss=z_loss, softcap=softcap,
                            logit_scale=logit_scale, empty_mean_is_zero=empty_mean_is_zero,
                            return_z_loss=return_z_loss, inplace_backward=inplace_backward)

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing, **self.options)
