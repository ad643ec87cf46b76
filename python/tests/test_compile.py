"""torch.compile(fullgraph=True) of a transformer block on cuact's operations:
no graph break, and the compiled output and gradients equal eager's."""
import torch
import torch._inductor.config

from block import Block, batch


def _run(model, x, target, seed):
    torch.manual_seed(seed)  # the dropout masks' seeds come from PyTorch's generator
    model.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), target)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


# The compiled graph draws its random numbers as eager does, so both take the same masks.
@torch._inductor.config.patch(fallback_random=True)
def test_compiled_block_matches_eager():
    torch._dynamo.reset()
    model = Block(p=0.2).train()
    compiled = torch.compile(model, fullgraph=True)
    x, target = batch(0)
    eager_loss, eager_grads = _run(model, x, target, seed=7)
    loss, grads = _run(compiled, x, target, seed=7)
    torch.testing.assert_close(loss, eager_loss)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e)
    # and a different seed gives a different mask (the seed is an input of the graph)
    other, _ = _run(compiled, x, target, seed=8)
    assert not torch.equal(other, loss)


class InPlaceNet(torch.nn.Module):
    """In-place activation modules and dropout, and a learned softmax mask."""

    def __init__(self):
        super().__init__()
        import cuact.nn
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 8), cuact.nn.ELU(inplace=True),
                                        torch.nn.Linear(8, 8), cuact.nn.ReLU6(inplace=True),
                                        cuact.nn.Dropout(0.2, inplace=True))
        self.mask = torch.nn.Parameter(torch.randn(8) * 0.1)

    def forward(self, x):
        import cuact.functional as CF
        return CF.softmax(self.body(x), -1, mask=self.mask)


@torch._inductor.config.patch(fallback_random=True)
def test_compiled_inplace_modules_and_learned_mask_match_eager():
    torch._dynamo.reset()
    model = InPlaceNet().train()
    compiled = torch.compile(model, fullgraph=True)
    x, target = torch.randn(4, 8), torch.randn(4, 8)
    eager_loss, eager_grads = _run(model, x, target, seed=3)
    loss, grads = _run(compiled, x, target, seed=3)
    torch.testing.assert_close(loss, eager_loss)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e)
    assert model.mask.grad is not None and bool(model.mask.grad.abs().sum() > 0)


def fp8_step(x, bias, dy, scale):
    """An fp8 MLP step's activation work: bias + GELU into e4m3 (delayed
    scale), its dact + dbias into e5m2 (current scale), a SwiGLU into e4m3."""
    import cuact.functional as CF
    y = CF.bias_activation_fp8(x, bias, "gelu", scale=scale)
    dx, dbias = CF.bias_activation_backward_fp8(x, bias, dy, "gelu")
    h = CF.swiglu_fp8(x, margin=1, power_of_two=True)
    return y, dx, dbias, h


def test_compiled_fp8_calls_match_eager():
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 8, generator=g).bfloat16()
    bias, dy = torch.randn(8, generator=g).bfloat16(), torch.randn(6, 8, generator=g).bfloat16()
    scale = torch.tensor([20.0])
    compiled = torch.compile(fp8_step, fullgraph=True)
    for got, want in zip(compiled(x, bias, dy, scale), fp8_step(x, bias, dy, scale)):
        if isinstance(want, tuple):  # a Float8Output
            assert type(got) is type(want)
            assert got.data.dtype == want.data.dtype
            assert torch.equal(got.data.view(torch.uint8), want.data.view(torch.uint8))
            for a, b in zip(got[1:], want[1:]):
                assert torch.equal(a, b)
        else:
            assert torch.equal(got, want)
