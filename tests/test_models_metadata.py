"""Input size and normalization: from the model's own metadata (timm's pretrained_cfg, a ViT's
patch_embed, torchvision weights, module attributes), or from ``normalize``."""

import pytest
import torch
from torch import nn

import featscope as fs
from featscope import FeatscopeError
from featscope.models import IDENTITY_SOURCE, Normalization

timm = pytest.importorskip("timm")


def tiny_vit() -> nn.Module:
    """A timm ViT built for 64 px inputs (its pretrained_cfg still says 224)."""
    return timm.create_model("vit_tiny_patch16_224", img_size=64, depth=1, pretrained=False)


def timm_resnet() -> nn.Module:
    return timm.create_model("test_resnet", pretrained=False)


def grey_resnet() -> nn.Module:
    return timm.create_model("test_resnet", pretrained=False, in_chans=1)


class Declares(nn.Module):
    """A model that declares its input: a shape and a normalization in one of the forms."""

    input_shape = (3, 16, 16)

    def __init__(self, normalization: object = None):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        if normalization is not None:
            self.normalization = normalization

    def forward(self, x):
        return self.conv(x)


def pair() -> nn.Module:
    return Declares(([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]))


def mapping() -> nn.Module:
    return Declares({"mean": 0.1, "std": 0.5})


def module() -> nn.Module:
    return Declares(Normalization([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]))


def layer_named_normalization() -> nn.Module:
    return Declares(nn.LayerNorm(3))  # a layer, not a declaration: ignored


def broken() -> nn.Module:
    return Declares({"mean": [0.1, 0.2, 0.3]})


def test_timm_vit_built_for_64_px_in_a_factory_gets_input_size_from_patch_embed():
    loaded = fs.load_model("tests.test_models_metadata:tiny_vit")
    assert loaded.input_shape == (3, 64, 64)
    assert loaded.module(torch.rand(2, *loaded.input_shape)).shape == (2, 1000)


def test_timm_model_built_in_a_factory_gets_pretrained_cfg_size_and_normalization():
    loaded = fs.load_model("tests.test_models_metadata:timm_resnet")
    cfg = timm_resnet().pretrained_cfg
    assert loaded.input_shape == tuple(cfg["input_size"]) == (3, 160, 160)
    assert loaded.normalization.mean.tolist() == pytest.approx(list(cfg["mean"]))
    assert loaded.normalization.std.tolist() == pytest.approx(list(cfg["std"]))
    assert loaded.normalization_source == "timm pretrained_cfg"


def test_timm_model_with_one_input_channel_gets_the_channels_of_its_first_conv():
    assert fs.load_model("tests.test_models_metadata:grey_resnet").input_shape == (1, 160, 160)


@pytest.mark.parametrize("factory, mean", [
    ("pair", [0.1, 0.2, 0.3]), ("mapping", [0.1]), ("module", [0.1, 0.2, 0.3]),
])
def test_normalization_attribute_of_the_model_is_used(factory, mean):
    loaded = fs.load_model(f"tests.test_models_metadata:{factory}")
    assert loaded.normalization.mean.tolist() == pytest.approx(mean)
    assert loaded.normalization_source == "the model's normalization attribute"
    assert loaded.input_shape == (3, 16, 16)  # its input_shape attribute


def test_layer_named_normalization_is_not_taken_for_a_declaration():
    loaded = fs.load_model("tests.test_models_metadata:layer_named_normalization")
    assert loaded.normalization.std.tolist() == [1.0, 1.0, 1.0]
    assert loaded.normalization_source == IDENTITY_SOURCE


def test_malformed_normalization_attribute_says_which_forms_are_valid():
    with pytest.raises(FeatscopeError, match=r"must be \(mean, std\)"):
        fs.load_model("tests.test_models_metadata:broken")


def test_model_that_declares_nothing_gets_identity_and_says_so():
    loaded = fs.load_model("tests.zoo:TupleOutput", input_shape=(3, 8, 8))
    assert loaded.normalization_source == "none (inputs in [0, 1])"
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(loaded.normalization(x), x)


def test_torchvision_and_embedded_models_say_where_their_normalization_comes_from(tmp_path):
    import torchvision.models as tvm
    torch.save(tvm.squeezenet1_1(weights=None).state_dict(), tmp_path / "squeezenet.pth")
    vision = fs.load_model("torchvision:squeezenet1_1", weights=str(tmp_path / "squeezenet.pth"))
    assert vision.normalization_source == "torchvision weights"
    assert "embedded model" in fs.load_model().normalization_source


@pytest.mark.parametrize("value, mean, std, source", [
    ("imagenet", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], "--normalize imagenet"),
    ("none", [0, 0, 0], [1, 1, 1], "--normalize none (inputs in [0, 1])"),
    ("0.5,0.5,0.5,0.25,0.25,0.25", [0.5] * 3, [0.25] * 3, "--normalize 0.5,0.5,0.5,0.25,0.25,0.25"),
    ("0.4,0.2", [0.4] * 3, [0.2] * 3, "--normalize 0.4,0.2"),
    ("0.1, 0.2, 0.3, 1, 2, 3", [0.1, 0.2, 0.3], [1, 2, 3], "--normalize 0.1, 0.2, 0.3, 1, 2, 3"),
])
def test_normalize_overrides_the_models_own(value, mean, std, source):
    loaded = fs.load_model("tests.test_models_metadata:timm_resnet", normalize=value)
    assert loaded.normalization.mean.tolist() == pytest.approx(mean)
    assert loaded.normalization.std.tolist() == pytest.approx(std)
    assert loaded.normalization_source == source


@pytest.mark.parametrize("value, fragment", [
    ("imagenett", "bad --normalize 'imagenett'"),
    ("0.5,0.5,0.5,0.25", "4 numbers for an input of 3 channel(s), expected 2 or 6"),
    ("0.5", "1 numbers"),
    ("0.5,0", "every std must be > 0"),
])
def test_bad_normalize_value_names_the_valid_forms(value, fragment):
    with pytest.raises(FeatscopeError) as caught:
        fs.load_model("tests.test_models_metadata:timm_resnet", normalize=value)
    assert fragment in str(caught.value)
    assert "imagenet, none, MEAN,STD" in str(caught.value)


def test_imagenet_normalization_of_a_one_channel_model_is_refused():
    with pytest.raises(FeatscopeError, match="3-channel"):
        fs.load_model("tests.test_models_metadata:grey_resnet", normalize="imagenet")


def test_normalize_is_what_the_search_feeds_the_model():
    loaded = fs.load_model("tests.test_models_metadata:pair", normalize="0.5,0.25")
    image = torch.full((1, 3, 16, 16), 0.75)
    assert torch.allclose(loaded.normalization(image), torch.ones(1, 3, 16, 16))
