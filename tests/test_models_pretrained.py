"""Pretrained weights offline (the local cache first, one quick check, then a clear error) and
architectures with random weights that keep their metadata; no test reaches the network."""

import os
import time

import pytest
import torch
from safetensors.torch import save_file

import featscope as fs
from featscope import FeatscopeError

timm = pytest.importorskip("timm")
huggingface_hub = pytest.importorskip("huggingface_hub")

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, and the one reachability check answered 'no network'."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    checks = []

    def no_network(url, **kwargs):
        checks.append((url, kwargs))
        raise ConnectionError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", no_network)
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail(f"waited {s} s to retry"))
    return checks


def test_timm_offline_fails_fast_in_one_line_after_one_check_without_retries(empty_hub_cache):
    flag, variable = huggingface_hub.constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")
    start = time.perf_counter()
    with pytest.raises(FeatscopeError) as caught:
        fs.load_model("timm:test_resnet")
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot download timm weights for 'test_resnet'" in message
    assert "not in the local Hugging Face cache" in message
    assert "--weights FILE" in message and "random_weights=True" in message
    [(url, options)] = empty_hub_cache  # a single online attempt...
    assert "timm/test_resnet.r160_in1k" in url
    assert options["retry_on_errors"] is False and options["timeout"] <= 10  # ...short, no retry
    # The offline mode was for that call only.
    assert huggingface_hub.constants.HF_HUB_OFFLINE == flag
    assert os.environ.get("HF_HUB_OFFLINE") == variable


def test_timm_offline_mode_set_by_the_user_is_reported_without_any_request(empty_hub_cache,
                                                                            monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FeatscopeError, match="HF_HUB_OFFLINE is set"):
        fs.load_model("timm:test_resnet")
    assert empty_hub_cache == [] and huggingface_hub.constants.HF_HUB_OFFLINE is True


def test_timm_weights_in_the_local_hub_cache_load_without_network(empty_hub_cache):
    trained = timm.create_model("test_resnet", pretrained=False)
    repo = os.path.join(huggingface_hub.constants.HF_HUB_CACHE,
                        "models--timm--test_resnet.r160_in1k")
    os.makedirs(os.path.join(repo, "refs"))
    os.makedirs(os.path.join(repo, "snapshots", SNAPSHOT))
    with open(os.path.join(repo, "refs", "main"), "w") as ref:
        ref.write(SNAPSHOT)
    save_file(trained.state_dict(), os.path.join(repo, "snapshots", SNAPSHOT, "model.safetensors"))
    loaded = fs.load_model("timm:test_resnet")
    assert empty_hub_cache == []  # no online attempt
    assert torch.equal(loaded.module.fc.weight, trained.fc.weight)
    assert loaded.input_shape == (3, 160, 160)


def test_timm_random_weights_keep_the_pretrained_cfg_metadata_without_download(monkeypatch):
    import timm.models._builder as builder
    monkeypatch.setattr(builder, "load_pretrained", lambda *a, **k: pytest.fail("downloaded"))
    loaded = fs.load_model("timm:test_resnet", random_weights=True)
    assert loaded.input_shape == (3, 160, 160)
    assert loaded.normalization.mean.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert loaded.normalization_source == "timm pretrained_cfg"
    assert len(loaded.class_names) == 1000


def test_torchvision_random_weights_keep_the_weights_metadata_without_download(monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("downloaded"))
    loaded = fs.load_model("torchvision:squeezenet1_1", random_weights=True)
    assert loaded.input_shape == (3, 224, 224)
    assert loaded.normalization.std.tolist() == pytest.approx([0.229, 0.224, 0.225])
    assert loaded.class_names[0] == "tench"


def test_embedded_model_with_random_weights_needs_no_weights_package():
    loaded = fs.load_model("efficientnet_lite1", random_weights=True)
    assert loaded.input_shape == (3, 240, 240)
    assert loaded.module(torch.rand(1, 3, 240, 240)).shape == (1, 1000)


@pytest.mark.parametrize("spec, kwargs, fragment", [
    ("timm:test_resnet", {"weights": "w.pth"}, "either weights=FILE or random_weights=True"),
    ("tests.zoo:TabularMLP", {}, "comes with its own weights"),
])
def test_random_weights_where_they_mean_nothing_are_refused(spec, kwargs, fragment):
    with pytest.raises(FeatscopeError, match=fragment):
        fs.load_model(spec, random_weights=True, **kwargs)
