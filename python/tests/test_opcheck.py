"""torch.library.opcheck on every operator and dtype (schema, fake kernel,
autograd registration, AOT dispatch); the block-scaled operators on the
dtypes they take. The cross-entropy operator, which takes no float64, is
opchecked in test_cross_entropy.py, the moe_glu operators in
test_moe_glu.py and test_moe_glu_experts.py."""
import pytest
import torch

import cuact  # noqa: F401
import cuact.functional as CF

ops = torch.ops.cuact
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


def _x(dtype, *shape, grad=True):
    g = torch.Generator().manual_seed(0)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_(grad)


def _pair():
    return torch.tensor([12345, 678], dtype=torch.int64)


def _hiding_mask(dtype):
    """A [2, 6] additive mask with -inf entries (hidden columns)."""
    m = _x(dtype, 2, 6, grad=False)
    m[0, 1], m[1, 4:] = -float("inf"), -float("inf")
    return m


def samples(dtype):
    """(operator, args) for every operator of the package."""
    gelu = CF.activation_params("gelu")
    elu = CF.activation_params("elu", alpha=0.5)
    sig = CF.activation_params("sigmoid")
    silu = CF.activation_params("silu")
    x = _x(dtype, 4, 6)
    y = x.detach().sigmoid()
    dy = _x(dtype, 4, 6, grad=False)
    bias = _x(dtype, 6)
    w = _x(dtype, 6).detach().abs().requires_grad_()
    return [
        (ops.activation, (x, *gelu)),
        (ops.activation, (x, *elu)),
        (ops.activation, (x, *sig)),
        (ops.activation_backward, (x.detach(), dy, *gelu)),
        (ops.activation_backward_from_output, (y, dy, *sig)),
        (ops.bias_activation, (x, bias, *gelu, 0.0, None)),
        (ops.bias_activation, (x, bias, *silu, 0.25, _pair())),
        (ops.bias_activation, (x, None, *gelu, 0.5, _pair())),
        (ops.bias_activation_backward, (x.detach(), bias.detach(), dy, *gelu, 0.25, _pair())),
        (ops.glu, (x, *silu, True)),
        (ops.glu, (x, *sig, False)),
        (ops.glu_backward, (x.detach(), dy[:, :3].contiguous(), *sig, False)),
        (ops.prelu, (_x(dtype, 2, 6, 3), w)),
        (ops.prelu_backward, (_x(dtype, 2, 6, 3, grad=False), w.detach(),
                              _x(dtype, 2, 6, 3, grad=False))),
        (ops.rrelu, (x, 0.125, 1 / 3, True, _pair())),
        (ops.rrelu, (x, 0.125, 1 / 3, False, None)),
        (ops.rrelu_backward, (x.detach(), dy, 0.125, 1 / 3, True, _pair())),
        (ops.softmax, (x, -1, "softmax", 0.5, None, 1, 1, 0, 0)),
        (ops.softmax, (x, 0, "log_softmax", 1.0, None, 1, 1, 0, 0)),
        (ops.softmax, (x, -1, "softmin", 1.0, None, 1, 1, 4, 1)),
        (ops.softmax, (x, -1, "softmax", 1.0, _x(dtype, 2, 6, grad=False), 2, 2, 0, 0)),
        (ops.softmax_backward, (y, dy, -1, "softmax", 1.0, None, 1, 1, 0, 0)),
        # the forward's mask (its -inf entries) and causal settings decide the hidden columns
        (ops.softmax_backward, (y, dy, -1, "log_softmax", 1.0, _hiding_mask(dtype), 2, 2, 0, 0)),
        (ops.softmax_backward, (y, dy, -1, "softmin", 0.5, None, 1, 1, 4, 1)),
    ] + fp8_samples(x.detach(), y, dy, bias.detach())


E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2
F4 = torch.float4_e2m1fn_x2


def fp8_samples(x, y, dy, bias):
    """The *_fp8 operators: both formats, both recipes (a scale given: delayed;
    None: current, with margin and power_of_two). Their inputs do not require
    grad: the operators refuse a call that would record a gradient
    (test_fp8.py)."""
    gelu = CF.activation_params("gelu")
    elu = CF.activation_params("elu", alpha=0.5)
    sig = CF.activation_params("sigmoid")
    silu = CF.activation_params("silu")
    s = torch.tensor([3.0])
    return [
        (ops.activation_fp8, (x, *gelu, E4M3, None, 0, False)),
        (ops.activation_fp8, (x, *elu, E5M2, s, 0, False)),
        (ops.activation_fp8, (x, *sig, E4M3, None, 2, True)),
        (ops.activation_backward_fp8, (x, dy, *gelu, E5M2, None, 0, False)),
        (ops.activation_backward_from_output_fp8, (y, dy, *sig, E5M2, s.reshape(()), 0, False)),
        (ops.bias_activation_fp8, (x, bias, *gelu, 0.0, None, E4M3, None, 0, False)),
        (ops.bias_activation_fp8, (x, bias, *silu, 0.25, _pair(), E4M3, s, 0, False)),
        (ops.bias_activation_fp8, (x, None, *gelu, 0.5, _pair(), E5M2, None, 1, False)),
        (ops.bias_activation_backward_fp8, (x, bias, dy, *gelu, E5M2, None, 0, False)),
        (ops.bias_activation_backward_fp8, (x, None, dy, *silu, E4M3, s, 0, False)),
        (ops.glu_fp8, (x, *silu, True, E4M3, None, 0, True)),
        (ops.glu_fp8, (x, *sig, False, E5M2, s, 0, False)),
        (ops.softmax_fp8, (x, -1, "softmax", 1.0, None, 1, 1, 0, 0, E4M3, s, 0, False)),
        (ops.softmax_fp8, (x, 0, "log_softmax", 0.5, None, 1, 1, 0, 0, E5M2, None, 1, True)),
        # an additive [2, 6] mask (rows repeated twice) and causal settings
        (ops.softmax_fp8, (x, -1, "softmin", 1.0, x[:2].clone(), 2, 2, 4, 1, E4M3, None, 0,
                           False)),
    ]


def block_samples(dtype):
    """The *_block_fp8 operators (float32, float16, bfloat16 inputs: float64
    is refused, test_block_scaled.py): both formats, blocks of 16, 32, 64
    and 128, every scale type and layout (column_major_packed: int32 words,
    strides (1, R4), 3 rows padded to 4), a partial last block, a bias of
    the input's dtype or float32; NVFP4 (scale_type e4m3, float4_e2m1fn_x2
    codes, a tensor scale)."""
    gelu = CF.activation_params("gelu")
    silu = CF.activation_params("silu")
    sig = CF.activation_params("sigmoid")
    x = _x(dtype, 3, 40, grad=False)
    bias = _x(dtype, 40, grad=False)
    wide = _x(dtype, 3, 300, grad=False)
    t = torch.tensor([0.002])
    return [
        (ops.bias_activation_block_fp8, (x, *gelu, bias, E4M3, 32, "e8m0", "row_major")),
        (ops.bias_activation_block_fp8, (x, *silu, None, E5M2, 16, "e8m0_floor",
                                         "column_major")),
        (ops.bias_activation_block_fp8, (x, *gelu, bias.float(), E4M3, 16, "f32",
                                         "swizzled_128x4")),
        (ops.glu_block_fp8, (x, *silu, True, E4M3, 16, "e8m0", "swizzled_128x4")),
        (ops.glu_block_fp8, (x, *sig, False, E5M2, 32, "f32", "row_major")),
        (ops.bias_activation_block_fp8, (x, *gelu, bias, F4, 16, "e4m3", "row_major", t)),
        (ops.bias_activation_block_fp8, (x, *silu, None, F4, 16, "e4m3", "swizzled_128x4", t)),
        (ops.glu_block_fp8, (x, *sig, False, F4, 16, "e4m3", "column_major", t)),
        (ops.bias_activation_block_fp8, (wide, *gelu, None, E4M3, 128, "f32", "row_major")),
        (ops.glu_block_fp8, (wide, *silu, True, E5M2, 64, "e8m0", "swizzled_128x4")),
        (ops.bias_activation_block_fp8, (wide, *gelu, None, E4M3, 32, "e8m0",
                                         "column_major_packed")),
        (ops.glu_block_fp8, (x, *sig, False, E5M2, 16, "e8m0_floor", "column_major_packed")),
        (ops.bias_activation_block_fp8, (x, *silu, bias, F4, 16, "e4m3", "column_major_packed",
                                         t)),
    ]


BLOCK_DTYPES = [torch.float32, torch.bfloat16, torch.float16]
BLOCK_CASES = [(dt, i) for dt in BLOCK_DTYPES for i in range(len(block_samples(torch.float32)))]


@pytest.mark.parametrize("dtype,index", BLOCK_CASES,
                         ids=[f"{dt}-{str(block_samples(torch.float32)[i][0]).split('.')[-1]}-{i}"
                              for dt, i in BLOCK_CASES])
def test_opcheck_block_scaled(dtype, index):
    op, args = block_samples(dtype)[index]
    torch.library.opcheck(op, args)


def _name(op):
    return str(op).split(".")[-1]


CASES = [(dt, i) for dt in DTYPES for i in range(len(samples(torch.float32)))]


@pytest.mark.parametrize("dtype,index", CASES,
                         ids=[f"{dt}-{_name(samples(torch.float32)[i][0])}-{i}" for dt, i in CASES])
def test_opcheck(dtype, index):
    op, args = samples(dtype)[index]
    torch.library.opcheck(op, args)


def test_float64_cuda_is_a_clear_error():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(NotImplementedError, match="float64 runs on the CPU only"):
        CF.gelu(torch.ones(3, dtype=torch.float64, device="cuda"))


def test_bad_arguments_raise_with_cuact_messages():
    """The operators' own checks name cuact's Status (PyTorch's exception types:
    test_arguments.py compares them with torch.nn.functional's)."""
    with pytest.raises(RuntimeError, match="invalid_parameter"):
        CF.softshrink(torch.ones(3), -1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        CF.activation(torch.ones(3), "nope")
    with pytest.raises(NotImplementedError, match="unsupported dtype"):
        ops.activation(torch.ones(3, dtype=torch.int32), *CF.activation_params("relu"))
    with pytest.raises(RuntimeError, match="even"):
        ops.glu(torch.ones(3), *CF.activation_params("sigmoid"), True)
    with pytest.raises(RuntimeError, match="weight"):
        ops.prelu(torch.ones(2, 3), torch.ones(2))


def test_inplace_and_modules():
    x = torch.linspace(-3, 3, 7)
    y = x.clone()
    assert CF.relu(y, inplace=True) is y and torch.equal(y, torch.relu(x))
    assert torch.equal(CF.leaky_relu(x, 0.2), torch.nn.functional.leaky_relu(x, 0.2))
    assert torch.equal(cuact.nn.LeakyReLU(0.2)(x), torch.nn.LeakyReLU(0.2)(x))
    assert torch.equal(cuact.nn.Hardtanh(-2.0, 2.0)(x), torch.nn.Hardtanh(-2.0, 2.0)(x))
    torch.testing.assert_close(cuact.nn.GELU("tanh")(x), torch.nn.GELU("tanh")(x))
    torch.testing.assert_close(cuact.nn.Softmax(dim=0)(x), torch.softmax(x, 0))
