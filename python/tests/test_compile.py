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


def test_compiled_block_matches_eager(monkeypatch):
    # The compiled graph draws its random numbers as eager does, so both take the same masks.
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
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
