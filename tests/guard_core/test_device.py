import pytest
import torch

from guard_core.device import autocast, autocast_dtype, resolve, seed_everything


def test_resolve_auto_prefers_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve("auto").type == expected
    assert resolve(None).type == expected
    assert resolve("cpu") == torch.device("cpu")


def test_resolve_rejects_unknown_and_missing_cuda():
    with pytest.raises(ValueError, match="unknown device"):
        resolve("tpu-ish!")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve("cuda:0")


def test_bf16_autocast_only_on_cuda():
    assert autocast_dtype(torch.device("cpu")) is None
    assert autocast_dtype(torch.device("cuda")) == torch.bfloat16
    with autocast(torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_seed_everything_repeats():
    seed_everything(3)
    a = torch.rand(4)
    g = seed_everything(3)
    assert torch.equal(a, torch.rand(4))
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(3)))
