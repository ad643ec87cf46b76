"""DistributedDataParallel on the CPU (gloo, two processes): training the block
for a few steps gives the gradients of a single process over the same data."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from block import Block, batch

STEPS = 3


def _step_grads(model, x, target, seed):
    torch.manual_seed(seed)
    model.zero_grad()
    torch.nn.functional.mse_loss(model(x), target).backward()
    return [p.grad.clone() for p in model.parameters()]


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = torch.nn.parallel.DistributedDataParallel(Block().train())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = []
    for step in range(STEPS):
        x, target = batch(step)
        half = x.shape[0] // world
        rows = slice(rank * half, (rank + 1) * half)
        grads = _step_grads(model, x[rows], target[rows], seed=1000 * step + rank)
        history.append(grads)
        opt.step()
    if rank == 0:
        torch.save(history, out)
    # Both ranks leave together: a rank that tears gloo down while the other
    # still holds a connection can abort it (std::terminate in gloo's pair).
    dist.barrier()
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_single_process(tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    ddp = torch.load(out)
    # One process: each rank's half with that rank's seed, gradients averaged as DDP does.
    model = Block().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(STEPS):
        x, target = batch(step)
        halves = [_step_grads(model, x[r * 2:(r + 1) * 2], target[r * 2:(r + 1) * 2],
                              seed=1000 * step + r) for r in range(2)]
        for p, g0, g1, got in zip(model.parameters(), *halves, ddp[step]):
            p.grad = g0 / 2 + g1 / 2
            assert torch.equal(p.grad, got), f"step {step}: DDP's gradient differs"
        opt.step()
