"""Loading models from every source, for real and without downloads; adapters for odd models."""

import urllib.error

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import featscope as fs
from featscope import FeatscopeError
from featscope.models.adapters import adapt

from . import zoo
from .models import ConvNet


def rendered_improves(loaded, target_objective, steps=15):
    result = fs.render(loaded, target_objective, steps=steps, lr=0.1, transforms="none")
    assert result.final[0] > result.initial[0]
    return result


def test_torchvision_with_weights_file_takes_metadata_from_its_weights(tmp_path):
    import torchvision.models as tvm
    path = tmp_path / "squeezenet.pth"
    torch.save(tvm.squeezenet1_1(weights=None).state_dict(), path)
    loaded = fs.load_model("torchvision:squeezenet1_1", weights=str(path))
    assert loaded.input_shape == (3, 224, 224)
    assert loaded.normalization.mean.tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert len(loaded.class_names) == 1000


def test_torchvision_offline_says_to_pass_weights(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(FeatscopeError, match="--weights FILE"):
        fs.load_model("torchvision:squeezenet1_1")


def test_timm_with_weights_file_takes_input_size_from_pretrained_cfg(tmp_path):
    timm = pytest.importorskip("timm")
    path = tmp_path / "test_resnet.safetensors"
    save_file(timm.create_model("test_resnet", pretrained=False).state_dict(), str(path))
    loaded = fs.load_model("timm:test_resnet", weights=str(path))
    cfg = timm.create_model("test_resnet", pretrained=False).pretrained_cfg
    assert loaded.input_shape == tuple(cfg["input_size"])
    assert loaded.normalization.std.tolist() == pytest.approx(list(cfg["std"]))
    layer = next(n for n, m in loaded.module.named_modules() if isinstance(m, torch.nn.Conv2d))
    rendered_improves(loaded, fs.channel(layer, 0), steps=5)


def test_timm_offline_says_to_pass_weights(monkeypatch):
    pytest.importorskip("timm")
    import timm.models._builder as builder

    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(builder, "load_pretrained", offline)
    monkeypatch.setattr("huggingface_hub.get_hf_file_metadata", offline)  # the one quick check
    with pytest.raises(FeatscopeError, match="--weights FILE"):
        fs.load_model("timm:test_resnet")


def test_unknown_timm_name_suggests_nearest():
    pytest.importorskip("timm")
    with pytest.raises(FeatscopeError, match="test_resnet"):
        fs.load_model("timm:test_resnett")


def test_torchscript_file_round_trip(tmp_path):
    model = ConvNet(dims=2).eval()
    path = tmp_path / "convnet.pt"
    torch.jit.trace(model, torch.zeros(1, 3, 16, 16)).save(str(path))
    loaded = fs.load_model(str(path), input_shape=(3, 16, 16))
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(loaded.module(x), model(x), atol=1e-6)
    rendered_improves(loaded, fs.class_logit(2))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_factory_with_state_dict_in_both_formats(tmp_path, suffix):
    trained = zoo.TabularMLP()
    with torch.no_grad():
        trained.fc2.weight.mul_(3)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(trained.state_dict(), path)
    else:
        save_file(trained.state_dict(), str(path))
    loaded = fs.load_model("tests.zoo:TabularMLP", weights=str(path), input_shape=(4,))
    assert torch.equal(loaded.module.fc2.weight, trained.fc2.weight)


def test_pickled_module_needs_trust(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(ConvNet(dims=1), path)
    with pytest.raises(FeatscopeError, match="--trust-pickle"):
        fs.load_model(str(path))
    loaded = fs.load_model(str(path), input_shape=(3, 32), trust_pickle=True)
    rendered_improves(loaded, fs.channel("conv2", 1))


@pytest.mark.parametrize("content, message", [
    (b"garbage", "cannot read model file"),
    (None, "is a state dict"),
])
def test_bad_model_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "model.pt"
    if content is None:
        torch.save(ConvNet().state_dict(), path)
    else:
        path.write_bytes(content)
    with pytest.raises(FeatscopeError, match=message):
        fs.load_model(str(path))


def test_safetensors_as_model_says_architecture_is_needed(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(2)}, str(path))
    with pytest.raises(FeatscopeError, match="--weights"):
        fs.load_model(str(path))


def test_onnx_file_is_converted_and_its_layers_probed(tmp_path):
    pytest.importorskip("onnx2torch")
    model = ConvNet(dims=2).eval()
    path = tmp_path / "convnet.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False)
    loaded = fs.load_model(str(path))
    assert loaded.input_shape == (3, 16, 16)  # from the ONNX graph's input
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(loaded.module(x), model(x), atol=1e-5)
    layers = [i.name for i in fs.list_layers(loaded.module, torch.zeros(1, 3, 16, 16))]
    conv = next(name for name in layers if "Conv" in name)
    rendered_improves(loaded, fs.channel(conv, 0))


def test_corrupt_onnx_file(tmp_path):
    pytest.importorskip("onnx2torch")
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00\x01 not protobuf")
    with pytest.raises(FeatscopeError, match="cannot convert ONNX file"):
        fs.load_model(str(path))


@pytest.mark.parametrize("factory, key", [
    (zoo.TupleOutput, "1"), (zoo.DictOutput, "logits"), (zoo.DataclassOutput, "logits"),
])
def test_output_selection(factory, key):
    model = factory().eval()
    loaded = adapt(fs.LoadedModel(model, "m", (3, 8, 8)), output=key)
    assert loaded.module(torch.zeros(1, 3, 8, 8)).shape == (1, 5)
    assert "head" in dict(loaded.module.named_modules())  # the user's layer names
    rendered_improves(loaded, fs.class_logit(4))


def test_adapted_model_with_batch_norms_renders_with_them_folded():
    class ConvBN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
            self.head = torch.nn.Linear(4, 5)

        def forward(self, x):
            features = self.features(x)
            return {"logits": self.head(features.mean((2, 3))), "features": features}

    model = ConvBN().eval()
    loaded = adapt(fs.LoadedModel(model, "m", (3, 8, 8)), output="logits")
    # Folding looks layers up by their named_modules() paths, which an adapter keeps.
    assert loaded.module.get_submodule("features.1") is model.features[1]
    rendered_improves(loaded, fs.class_logit(4))


def test_unknown_output_key_lists_valid_ones():
    loaded = adapt(fs.LoadedModel(zoo.DictOutput(), "m", (3, 8, 8)), output="probs")
    with pytest.raises(FeatscopeError, match="features, logits"):
        loaded.module(torch.zeros(1, 3, 8, 8))


def test_two_input_model_searches_either_input(tmp_path):
    model = zoo.TwoInputs().eval()
    base = fs.LoadedModel(model, "two", (3, 8, 8))
    image = adapt(base, input_shapes=[(3, 8, 8), (4,)], search_input=0)
    assert image.input_shape == (3, 8, 8)
    rendered_improves(image, fs.channel("conv", 1))
    fixed = tmp_path / "image.npz"
    np.savez(fixed, np.ones((3, 8, 8), dtype=np.float32))
    metadata = adapt(base, input_shapes=[(4,)], search_input=1, fixed_inputs=str(fixed))
    assert metadata.input_shape == (4,)
    result = rendered_improves(metadata, fs.class_logit(0))
    x = result.images[:1]
    expected = model(torch.ones(1, 3, 8, 8), x)[0, 0]
    assert result.final[0].item() == pytest.approx(expected.item(), rel=1e-4)


def test_search_input_out_of_range():
    with pytest.raises(FeatscopeError, match="valid 0..1"):
        adapt(fs.LoadedModel(zoo.TwoInputs(), "two", (3, 8, 8)),
              input_shapes=[(3, 8, 8), (4,)], search_input=2)
