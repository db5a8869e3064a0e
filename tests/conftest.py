import pytest
import torch

import featscope as fs


@pytest.fixture(scope="session")
def lite0() -> fs.LoadedModel:
    return fs.load_model()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
