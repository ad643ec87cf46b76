"""A small transformer block built on cuact's operations: causal masked softmax
attention, bias + GELU + dropout on the attention output, a SwiGLU MLP."""
import math

import torch

import cuact.functional as CF


class Block(torch.nn.Module):
    def __init__(self, d=16, heads=2, ffn=24, p=0.1):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.heads, self.p = heads, p
        self.qkv = torch.nn.Parameter(torch.randn(d, 3 * d, generator=g) / math.sqrt(d))
        self.proj = torch.nn.Parameter(torch.randn(d, d, generator=g) / math.sqrt(d))
        self.proj_bias = torch.nn.Parameter(torch.randn(d, generator=g) * 0.1)
        self.w_in = torch.nn.Parameter(torch.randn(d, 2 * ffn, generator=g) / math.sqrt(d))
        self.w_out = torch.nn.Parameter(torch.randn(ffn, d, generator=g) / math.sqrt(ffn))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (x @ self.qkv).split(d, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2)
        probs = CF.softmax(scores, dim=-1, scale=1 / math.sqrt(d // self.heads), causal=True)
        att = (probs @ v).transpose(1, 2).reshape(b, t, d)
        x = x + CF.bias_activation(att @ self.proj, self.proj_bias, "gelu", p=self.p,
                                   training=self.training)
        return x + CF.swiglu(x @ self.w_in) @ self.w_out


def batch(step, size=4, t=5, d=16):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(size, t, d, generator=g), torch.randn(size, t, d, generator=g)
