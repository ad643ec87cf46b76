"""cuact: activation, GLU, dropout, softmax and cross-entropy kernels as torch operators.

    import cuact.functional as CF
    y = CF.gelu(x)                                   # torch.nn.functional.gelu's arguments
    p = CF.softmax(scores, dim=-1, causal=True)      # causal attention probabilities
    h = CF.swiglu(x @ w_in)                          # silu(a) * b over the halves of the last dim
    q = CF.activation_fp8(x, "gelu")                 # fp8 codes and their scale, amax, scale_inv
    loss = CF.cross_entropy(logits, target)          # fused: the gradient in the same pass

Operators (torch.ops.cuact.*) have fake kernels and autograd, so they trace
under torch.compile(fullgraph=True). CUDA tensors run cuact's kernels on the
current stream; CPU tensors run cuact's double-precision reference (slow,
exact; float64 too, for gradcheck).
"""
import os

import torch

torch.ops.load_library(os.path.join(os.path.dirname(__file__), "_C.so"))

from . import _ops, _autograd  # noqa: E402,F401  (fake kernels, vmap rules; derivatives)
from . import functional, nn  # noqa: E402
from .functional import *  # noqa: E402,F401,F403

__version__ = "0.1.0"
