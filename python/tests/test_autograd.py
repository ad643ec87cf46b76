"""cuact as an autograd citizen, against PyTorch: in-place training, second
and higher derivatives (gradgradcheck in float64), forward mode and the
torch.func transforms (jvp, jacfwd, jacrev, hessian, vmap)."""
import math

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF
import cuact.nn
from cases import ELEMENTWISE

func = torch.func
f64 = torch.float64


def _x(*shape, avoid=(), seed=5):
    """float64 inputs in [-4, 4) away from the kinks (finite differences and
    PyTorch's one-sided kink choices cross none)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g, dtype=f64) * 8 - 4
    for k in (0.0, *avoid):
        x = torch.where((x - k).abs() < 0.05, x + 0.1, x)
    return x


# ------------------------------------------------------------------ in place

# torch.nn.functional's functions with inplace, and their arguments.
INPLACE = {
    "relu": (), "relu6": (), "hardtanh": (-2.0, 3.0), "leaky_relu": (0.1,), "elu": (0.7,),
    "selu": (), "celu": (1.5,), "silu": (), "mish": (), "hardsigmoid": (), "hardswish": (),
    "threshold": (0.5, -2.0), "rrelu": (0.1, 0.3, False),
}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_gradient_is_pytorchs(name):
    args = INPLACE[name]
    xa = _x(40, avoid=(-3, 3, 6, -2, 0.5)).requires_grad_()
    xb = xa.detach().clone().requires_grad_()
    ya = getattr(CF, name)(xa * 1, *args, inplace=True)
    yb = getattr(F, name)(xb * 1, *args, inplace=True)
    torch.testing.assert_close(ya, yb)
    ya.pow(2).sum().backward()
    yb.pow(2).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


def test_the_reported_elu_case():
    x = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    CF.elu(x * 1, inplace=True).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([math.exp(-1), 1.0, 1.0]))


@pytest.mark.parametrize("name", list(INPLACE) + ["dropout"])
def test_inplace_gradient_equals_out_of_place(name):
    """Bit for bit (the random ones from the same generator state, training)."""
    args = {"dropout": (0.4, True), "rrelu": (0.1, 0.3, True)}.get(name, INPLACE.get(name))
    grads = []
    for inplace in (False, True):
        x = _x(64).requires_grad_()
        torch.manual_seed(11)
        y = getattr(CF, name)(x * 1, *args, inplace=inplace)
        y.pow(2).sum().backward()
        grads.append((y.detach(), x.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


MODULES = {"ReLU": (), "ReLU6": (), "Hardtanh": (-2.0, 2.0), "LeakyReLU": (0.1,), "ELU": (),
           "SELU": (), "CELU": (), "SiLU": (), "Mish": (), "Hardsigmoid": (), "Hardswish": (),
           "Threshold": (0.1, 0.0)}


@pytest.mark.parametrize("module", list(MODULES))
def test_inplace_module_trains_like_pytorchs(module):
    """nn.Sequential(Linear, Module(inplace=True), Linear): three SGD steps
    give PyTorch's parameters."""
    def net(make):
        torch.manual_seed(3)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), make(*MODULES[module], inplace=True),
                                   torch.nn.Linear(16, 4)).double()

    ours = net(getattr(cuact.nn, module))
    theirs = net(getattr(torch.nn, module))
    data = torch.randn(32, 8, dtype=f64, generator=torch.Generator().manual_seed(1))
    for model in (ours, theirs):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            model(data).pow(2).mean().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------ higher order

@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c.label for c in ELEMENTWISE])
def test_gradgradcheck_elementwise(case):
    x = _x(16, avoid=case.points).requires_grad_()
    assert torch.autograd.gradgradcheck(case.ours, (x,))


@pytest.mark.parametrize("case", [c for c in ELEMENTWISE if c.name not in ("glu", "rrelu")],
                         ids=[c.label for c in ELEMENTWISE if c.name not in ("glu", "rrelu")])
def test_second_derivative_is_pytorchs(case):
    def second(fn):
        x = _x(64, avoid=case.points).requires_grad_()
        fn = COMPOSITE.get(case.name, fn) if fn is case.theirs else fn
        (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
        return torch.autograd.grad(g.sum(), x, allow_unused=True, materialize_grads=True)[0]
    torch.testing.assert_close(second(case.ours), second(case.theirs))


@pytest.mark.parametrize("activation", ["quick_gelu", "identity", "sigmoid", "tanh"])
def test_gradgradcheck_other_activations(activation):
    x = _x(16).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: CF.activation(t, activation), (x,))


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_gradgradcheck_bias_activation(p):
    kind, params = CF.activation_params("gelu")
    pair = torch.tensor([7, 11])
    from cuact._autograd import call
    f = lambda x, b: call("bias_activation", x, b, kind, params, p, pair)[0]  # noqa: E731
    assert torch.autograd.gradgradcheck(f, (_x(5, 6).requires_grad_(),
                                            _x(6, seed=2).requires_grad_()))


@pytest.mark.parametrize("fn", [CF.glu, CF.swiglu, CF.geglu, CF.reglu])
def test_gradgradcheck_glu_family(fn):
    assert torch.autograd.gradgradcheck(lambda x: fn(x, 0), (_x(6, 3).requires_grad_(),))


def test_gradgradcheck_prelu():
    for w in (_x(3, seed=1), _x(1, seed=1)):
        assert torch.autograd.gradgradcheck(CF.prelu, (_x(2, 3, 4).requires_grad_(),
                                                       w.requires_grad_()))


def test_gradgradcheck_rrelu_training():
    from cuact._autograd import call
    pair = torch.tensor([3, 4])
    f = lambda x: call("rrelu", x, 0.125, 1 / 3, True, pair)[0]  # noqa: E731
    assert torch.autograd.gradgradcheck(f, (_x(20).requires_grad_(),))


@pytest.mark.parametrize("fn", [CF.softmax, CF.log_softmax, CF.softmin])
def test_gradgradcheck_softmax_family(fn):
    x = _x(3, 5).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: fn(t, dim=-1, scale=0.7), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fn(t, dim=0), (x,))
    mask = _x(5, seed=3).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t, m: fn(t, -1, mask=m), (x, mask))
    if fn is not CF.log_softmax:  # its hidden outputs are -inf: no finite differences there
        assert torch.autograd.gradgradcheck(lambda t: fn(t, dim=-1, causal=True),
                                            (_x(2, 3, 3).requires_grad_(),))


def test_the_reported_sigmoid_case():
    x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad(CF.sigmoid(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(gg, torch.tensor([-0.0576, 0.0909, -0.0800]), atol=1e-4, rtol=0)


def test_third_derivative():
    def third(f):
        d1 = func.grad(lambda t: f(t).sum())
        d2 = func.grad(lambda t: d1(t).sum())
        return func.grad(lambda t: d2(t).sum())(_x(8))
    for ours, theirs in ((CF.gelu, F.gelu), (CF.tanh, torch.tanh), (CF.silu, F.silu),
                         (CF.softplus, F.softplus)):
        torch.testing.assert_close(third(ours), third(theirs))


# ------------------------------------------------------------------ forward mode, torch.func

# PyTorch's own function where torch.func cannot differentiate it twice or in
# forward mode (hardsigmoid_backward has neither; rrelu has no vmap rule).
COMPOSITE = {"hardsigmoid": lambda t: F.relu6(t + 3) / 6,
             "rrelu": lambda t: F.leaky_relu(t, float(torch.tensor((1 / 8 + 1 / 3) / 2,
                                                                    dtype=torch.float32)))}


def _pairs():
    """(label, cuact function, torch function, inputs): one of every operator."""
    pairs = [(c.label, c.ours, COMPOSITE.get(c.name, c.theirs), (_x(12, avoid=c.points),))
             for c in ELEMENTWISE]
    w = _x(3, seed=4)
    pairs += [
        ("swiglu", lambda t: CF.swiglu(t), lambda t: F.silu(t[..., :3]) * t[..., 3:],
         (_x(2, 6),)),
        ("prelu", CF.prelu, F.prelu, (_x(2, 3, 2), w)),
        ("softmax", lambda t: CF.softmax(t, -1), lambda t: F.softmax(t, -1), (_x(3, 5),)),
        ("softmax scale dim 0", lambda t: CF.softmax(t, 0, scale=0.5),
         lambda t: F.softmax(0.5 * t, 0), (_x(3, 5),)),
        ("log_softmax", lambda t: CF.log_softmax(t, -1), lambda t: F.log_softmax(t, -1),
         (_x(3, 5),)),
        ("softmin", lambda t: CF.softmin(t, 1), lambda t: F.softmin(t, 1), (_x(3, 5),)),
        ("softmax with a mask", lambda t, m: CF.softmax(t, -1, mask=m),
         lambda t, m: F.softmax(t + m, -1), (_x(3, 5), _x(5, seed=6))),
        ("bias_activation", lambda t, b: CF.bias_activation(t, b, "gelu"),
         lambda t, b: F.gelu(t + b), (_x(3, 4), _x(4, seed=7))),
    ]
    return pairs


PAIRS = _pairs()


@pytest.mark.parametrize("index", range(len(PAIRS)), ids=[p[0] for p in PAIRS])
def test_torch_func_transforms_match_pytorchs(index):
    _, ours, theirs, inputs = PAIRS[index]
    argnums = tuple(range(len(inputs)))
    tangents = tuple(torch.randn_like(t) for t in inputs)
    for transform in (lambda f: func.jvp(f, inputs, tangents),
                      lambda f: func.jacfwd(f, argnums)(*inputs),
                      lambda f: func.jacrev(f, argnums)(*inputs),
                      lambda f: func.hessian(lambda *a: f(*a).sum(), argnums)(*inputs),
                      lambda f: func.vmap(f)(*(torch.stack([t, t * 0.5]) for t in inputs)),
                      lambda f: func.grad(lambda *a: f(*a).pow(2).sum(), argnums)(*inputs)):
        torch.testing.assert_close(transform(ours), transform(theirs))


def test_the_reported_gelu_jvp():
    t = torch.tensor([0.5, -1.0, 2.0])
    _, tangent = func.jvp(CF.gelu, (t,), (torch.ones(3),))
    torch.testing.assert_close(tangent, torch.tensor([0.8675, -0.0833, 1.0852]), atol=1e-4,
                               rtol=0)


def test_forward_ad_dual_tensors():
    import torch.autograd.forward_ad as fwad
    x, t = _x(6), torch.ones(6, dtype=f64)
    with fwad.dual_level():
        y = CF.mish(fwad.make_dual(x, t))
        tangent = fwad.unpack_dual(y).tangent
    with fwad.dual_level():
        expected = fwad.unpack_dual(F.mish(fwad.make_dual(x, t))).tangent
    torch.testing.assert_close(tangent, expected)


def test_random_operators_under_vmap():
    """Training dropout and rrelu draw their pair from PyTorch's generator:
    vmap's default randomness='error' refuses it as for PyTorch's; with
    randomness='different' every entry gets its own mask."""
    x = torch.ones(4, 50, dtype=f64)
    with pytest.raises(RuntimeError, match="randomness"):
        func.vmap(lambda t: CF.dropout(t, 0.5))(x)
    y = func.vmap(lambda t: CF.dropout(t, 0.5), randomness="different")(x)
    assert not torch.equal(y[0], y[1])
    y = func.vmap(lambda t: CF.dropout(t, 0.5), randomness="same")(x)
    assert torch.equal(y[0], y[1])
