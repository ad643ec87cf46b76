"""The operations under test: each cuact function beside its torch.nn.functional
counterpart, and the inputs that matter for it (SPEC's kinks and boundaries)."""
import math

import mpmath as mp
import torch
import torch.nn.functional as F

import cuact.functional as CF

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


class Case:
    """cuact(x) beside torch(x) over inputs built from `points` (the kinks of
    the function, in x units); `params` name the case in tables."""

    def __init__(self, name, ours, theirs, points=(), params="", theirs_fp32_params=None):
        self.name, self.ours, self.theirs = name, ours, theirs
        self.points, self.params = list(points), params
        # torch's function with its float parameters rounded to fp32, as cuact
        # holds them (cuact::Activation's fields are float)
        self.theirs_fp32_params = theirs_fp32_params
        self.exact = None  # the function in high precision, where the test has it
        # (cuact.functional name, keywords) for cuact.functional.activation and
        # the *_fp8 functions (None: not a plain activation)
        self.activation = None

    @property
    def label(self):
        return f"{self.name}({self.params})" if self.params else self.name

    def __repr__(self):
        return self.label


def _ew(name, points=(), **kw):
    ours = getattr(CF, name)
    theirs = getattr(F, name)
    params = ", ".join(f"{k}={v}" for k, v in kw.items())
    kw32 = {k: (_fp32(v) if isinstance(v, float) else v) for k, v in kw.items()}
    if name != "silu":  # torch's silu has no beta
        kw32.update({k: _fp32(d) for k, (_, d) in
                     CF.ACTIVATIONS.get(_KIND.get(name, name), {}).items() if k not in kw})
    case = Case(name, lambda x: ours(x, **kw), lambda x: theirs(x, **kw), points, params,
                lambda x: theirs(x, **kw32))
    case.exact = _exact(name, **kw)
    case.activation = (name, kw)
    return case


_KIND = {"logsigmoid": "log_sigmoid"}

mp.mp.dps = 150  # enough for 1 + tanh(u) near -1 in the gelu tails


def _exact(name, **kw):
    """The function in 150-digit arithmetic (mpmath), from SPEC's formulas."""
    a = kw.get("negative_slope", kw.get("alpha", 0.01 if name == "leaky_relu" else 1.0))
    lo, hi = kw.get("min_val", -1.0), kw.get("max_val", 1.0)
    lam = kw.get("lambd", 0.5)
    beta, thr = kw.get("beta", 1.0), kw.get("threshold", 20.0)
    sig = lambda x: 1 / (1 + mp.exp(-x))  # noqa: E731
    selu_a, selu_l = mp.mpf("1.6732632423543772848170429916717"), mp.mpf("1.0507009873554804934193349852946")
    f = {
        "relu": lambda x: max(x, 0),
        "relu6": lambda x: min(max(x, 0), 6),
        "hardtanh": lambda x: min(max(x, lo), hi),
        "leaky_relu": lambda x: x if x > 0 else a * x,
        "elu": lambda x: x if x > 0 else a * mp.expm1(x),
        "selu": lambda x: selu_l * (x if x > 0 else selu_a * mp.expm1(x)),
        "celu": lambda x: max(0, x) + min(0, a * mp.expm1(x / a)),
        "gelu": (lambda x: x * mp.ncdf(x)) if kw.get("approximate", "none") == "none" else
                (lambda x: x / 2 * (1 + mp.tanh(mp.sqrt(2 / mp.pi) * (x + mp.mpf("0.044715") * x**3)))),
        "sigmoid": sig,
        "tanh": mp.tanh,
        "silu": lambda x: x * sig(x),
        "mish": lambda x: x * mp.tanh(mp.log1p(mp.exp(x))),
        "softplus": lambda x: x if beta * x > thr else mp.log1p(mp.exp(beta * x)) / beta,
        "logsigmoid": lambda x: -mp.log1p(mp.exp(-x)),
        "hardsigmoid": lambda x: min(max(x + 3, 0), 6) / 6,
        "hardswish": lambda x: x * min(max(x + 3, 0), 6) / 6,
        "softsign": lambda x: x / (1 + abs(x)),
        "tanhshrink": lambda x: x - mp.tanh(x),
        "hardshrink": lambda x: x if abs(x) > lam else 0,
        "softshrink": lambda x: x - lam if x > lam else (x + lam if x < -lam else 0),
        "threshold": lambda x: x if x > kw.get("threshold", 0) else kw.get("value", 0),
    }[name]
    return f


def exact_value(case, x, direction):
    """The exact forward value or derivative at float x (None where it has none:
    NaN, infinities)."""
    if case.exact is None or not math.isfinite(x):
        return None
    f = case.exact
    if direction == "forward":
        return float(f(mp.mpf(x)))
    h = max(abs(mp.mpf(x)), 1) * mp.mpf(10) ** -50
    return float((f(mp.mpf(x) + h) - f(mp.mpf(x) - h)) / (2 * h))


def _fp32(v):
    return float(torch.tensor(v, dtype=torch.float32))


ELEMENTWISE = [
    _ew("relu"),
    _ew("relu6", [6.0]),
    _ew("hardtanh", [-1.0, 1.0]),
    _ew("hardtanh", [-2.0, 3.0], min_val=-2.0, max_val=3.0),
    _ew("leaky_relu"),
    _ew("leaky_relu", negative_slope=0.2),
    _ew("elu"),
    _ew("elu", alpha=0.5),
    _ew("selu"),
    _ew("celu"),
    _ew("celu", alpha=2.0),
    _ew("gelu"),
    _ew("gelu", approximate="tanh"),
    _ew("sigmoid"),
    _ew("tanh"),
    _ew("silu"),
    _ew("mish"),
    _ew("softplus", [20.0]),
    _ew("softplus", [2.5], beta=2.0, threshold=5.0),
    _ew("logsigmoid"),
    _ew("hardsigmoid", [-3.0, 3.0]),
    _ew("hardswish", [-3.0, 3.0]),
    _ew("softsign"),
    _ew("tanhshrink"),
    _ew("hardshrink", [-0.5, 0.5]),
    _ew("hardshrink", [-1.5, 1.5], lambd=1.5),
    _ew("softshrink", [-0.5, 0.5]),
    _ew("softshrink", [-1.5, 1.5], lambd=1.5),
    _ew("threshold", [0.5], threshold=0.5, value=-2.0),
    _ew("threshold", [-1.0], threshold=-1.0, value=7.0),
    Case("glu", lambda x: CF.glu(x.reshape(-1, 2), -1), lambda x: F.glu(x.reshape(-1, 2), -1),
         params="pairs of neighbours"),
    Case("rrelu", lambda x: CF.rrelu(x), lambda x: F.rrelu(x, training=False), params="eval",
         theirs_fp32_params=lambda x: F.leaky_relu(x, _fp32((1 / 8 + 1 / 3) / 2))),
]


def dense_grid(case, dtype):
    """A dense grid over [-12, 12], SPEC's points and their neighbours in dtype,
    +-0, the dtype's denormals, huge values, +-inf and NaN."""
    fin = torch.finfo(dtype)
    grid = [-12.0 + 24.0 * i / 4800 for i in range(4801)]  # the same points on every host
    special = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 0.5, -0.5, 20.0,
               fin.tiny, -fin.tiny, fin.tiny / 4, -fin.tiny / 4, fin.smallest_normal * 2 ** -3,
               1e4, -1e4, 100.0, -100.0, 1000.0, -1000.0, fin.max, -fin.max,
               fin.max / 2, -fin.max / 2, math.inf, -math.inf, math.nan]
    x = torch.tensor(grid + special + case.points, dtype=torch.float64).to(dtype)
    around = torch.tensor([0.0, 3.0, -3.0, 6.0] + case.points, dtype=torch.float64).to(dtype)
    up = torch.nextafter(around, torch.full_like(around, math.inf))
    down = torch.nextafter(around, torch.full_like(around, -math.inf))
    x = torch.cat([x, around, up, down])
    return x if x.numel() % 2 == 0 else torch.cat([x, x[:1]])  # even, for glu's pairs
