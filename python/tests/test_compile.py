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
