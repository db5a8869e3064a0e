"""The embedded EfficientNet-Lite0: real ImageNet weights, real visualizations."""

import numpy as np
import pytest
import torch
from PIL import Image

import featscope as fs
from featscope.models.imagenet import imagenet_class_names

skimage_data = pytest.importorskip("skimage.data")


def imagenet_eval_crop(array: np.ndarray) -> torch.Tensor:
    """Resize the short side to 256, centre-crop 224: (1, 3, 224, 224) in [0, 1]."""
    image = Image.fromarray(array).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize([round(s * scale) for s in image.size], Image.BICUBIC)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)[None]


@pytest.mark.parametrize("name, classes", [
    ("chelsea", {281, 282, 285}), ("coffee", {967}), ("rocket", {657}),
])
def test_embedded_model_classifies_sample_images(lite0, name, classes):
    x = imagenet_eval_crop(getattr(skimage_data, name)())
    with torch.no_grad():
        top = lite0.module(lite0.normalization(x)).argmax(1).item()
    assert top in classes


def test_class_names_in_index_order():
    names = imagenet_class_names()
    assert len(names) == 1000
    assert (names[0], names[285], names[967]) == ("tench", "Egyptian Mau", "espresso")


def test_objective_rises_for_early_middle_late_channels_and_logits(lite0):
    objectives = [fs.channel("_blocks.1", 3), fs.channel("_blocks.8", 5),
                  fs.channel("_blocks.14", 7), fs.class_logit(285), fs.class_logit(967)]
    result = fs.render(lite0, objectives, steps=48, size=160)
    gain = result.final - result.initial
    assert (gain > 2.0).all(), gain
    assert (result.final > 2 * result.initial.abs()).all()
    assert result.images.shape == (5, 3, 160, 160)
    assert result.images.min() >= 0 and result.images.max() <= 1


def test_class_visualization_reaches_high_probability(lite0):
    result = fs.render(lite0, fs.class_logit(967), steps=48, size=160)
    with torch.no_grad():
        x = torch.nn.functional.interpolate(result.images, size=224, mode="bilinear")
        probability = lite0.module(lite0.normalization(x)).softmax(1)[0, 967].item()
    assert probability > 0.9


@pytest.mark.parametrize("preset", ["keras", "lucid"])
def test_anchor_presets_run_with_published_settings(lite0, preset):
    result = fs.render(lite0, fs.channel("_blocks.8", 5), preset=preset, steps=8)
    expected = fs.PRESETS[preset]
    assert result.recipe.size == expected.size and result.recipe.lr == expected.lr
    assert result.final[0] > result.initial[0]
    side = 180 - 2 * 25 if preset == "keras" else 128
    assert result.images.shape[-2:] == (side, side)
