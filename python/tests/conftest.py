import os

import pytest
import torch


@pytest.fixture
def cuda():
    """The CUDA device; the test skips without one (fails with CUACT_REQUIRE_GPU=1)."""
    if not torch.cuda.is_available():
        if os.environ.get("CUACT_REQUIRE_GPU") == "1":
            pytest.fail("CUACT_REQUIRE_GPU=1 but torch sees no CUDA device")
        pytest.skip("no CUDA device: the CUDA half of the suite needs a GPU")
    return torch.device("cuda")
