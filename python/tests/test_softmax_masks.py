"""Softmax masks broadcast as PyTorch broadcasts them: every layout cuact's
mask rows take without a copy, the fallback for the rest, bool keep-masks."""
import math

import pytest
import torch
import torch.nn.functional as F

import cuact.functional as CF

SHAPES = [(5,), (1, 5), (4, 5), (3, 4, 5), (2, 1, 1, 5), (2, 3, 1, 5), (1, 3, 1, 5),
          (2, 1, 4, 5), (1, 1, 4, 1), ()]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_additive_mask_broadcasts_like_pytorch(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    mask = torch.randn(shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(CF.softmax(x, -1, mask=mask), F.softmax(x + mask, -1))
    torch.testing.assert_close(CF.log_softmax(x, -1, mask=mask, scale=0.5),
                               F.log_softmax(0.5 * x + mask, -1))


def test_bool_mask_keeps_true():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, generator=g)
    keep = torch.rand(2, 1, 1, 5, generator=g) > 0.3
    keep[..., 0] = True  # no fully hidden row here
    want = F.softmax(x.masked_fill(~keep, -math.inf), -1)
    torch.testing.assert_close(CF.softmax(x, -1, mask=keep), want)


def test_causal_matches_a_triangular_mask():
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    for offset in (0, 2, -1):
        hide = torch.ones(4, 6, dtype=torch.bool).triu(diagonal=1 + offset)
        want = F.softmax(x.masked_fill(hide, -math.inf), -1).nan_to_num(0.0)
        torch.testing.assert_close(CF.softmax(x, -1, causal=True, causal_offset=offset), want)


def test_strided_rows_are_read_in_place():
    x = torch.randn(6, 10, dtype=torch.float64)[:, :7]  # rows 10 apart
    assert not x.is_contiguous()
    torch.testing.assert_close(CF.softmax(x, -1), F.softmax(x, -1))
    torch.testing.assert_close(CF.softmin(x.t(), 0), F.softmin(x.t(), 0))


def test_mask_on_another_dimension_is_refused():
    with pytest.raises(ValueError, match="last dimension"):
        CF.softmax(torch.randn(3, 4), 0, mask=torch.zeros(4))
