"""Dataset examples on a model built here, where the ranking and the peak are known."""

import pytest
import torch
from PIL import Image
from torch import nn

import featscope as fs
from featscope.analysis.examples import crop, find_images, top_examples
from featscope.models import identity_normalization


class ColourNet(nn.Module):
    """Channel k of ``conv`` is colour channel k of the image, pixel by pixel."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))

    def forward(self, x):
        return self.conv(x)


@pytest.fixture
def colour_model():
    return fs.LoadedModel(ColourNet(), "colour", (3, 32, 32), identity_normalization(3))


@pytest.fixture
def folder(tmp_path):
    nested = tmp_path / "nested" / "deeper"
    nested.mkdir(parents=True)
    for name, colour in {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
                         "grey": (128, 128, 128)}.items():
        Image.new("RGB", (48, 40), colour).save(tmp_path / f"{name}.png")
    spot = Image.new("RGB", (64, 64), (0, 0, 0))
    spot.paste((255, 255, 255), (8, 40, 16, 48))  # a white 8x8 square, left 8, top 40
    spot.save(nested / "spot.jpg", quality=95)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("not an image either, and not an image suffix")
    return tmp_path


def name(example):
    return example.path.rsplit("/", 1)[-1]


def test_top_images_per_channel_are_ranked_by_activation(colour_model, folder):
    objectives = [fs.channel("conv", k) for k in range(3)]
    found = top_examples(colour_model, objectives, folder, k=2, batch_size=3, progress=False)
    assert found.images == 5
    assert [p for p, _ in found.skipped] == [str(folder / "broken.png")]
    for k, colour in enumerate(["red", "green", "blue"]):
        best, second = found.by_target[f"conv:{k}"]
        assert name(best) == f"{colour}.png"
        assert best.activation == pytest.approx(1.0, abs=1e-3)
        assert name(second) == "grey.png"
        assert second.activation == pytest.approx(128 / 255, abs=1e-3)
        assert found.best(f"conv:{k}") == best.activation


def test_peak_box_surrounds_the_strongest_response(colour_model, folder):
    found = top_examples(colour_model, [fs.channel("conv", 0, pool="max")], folder, k=6,
                         progress=False)
    spot = next(e for e in found.by_target["conv:0/max"] if name(e) == "spot.jpg")
    left, top, right, bottom = spot.box
    # The prepared image is 32 px: the square is at x 4..8, y 20..24, centre (6, 22).
    assert left <= 6 < right and top <= 22 < bottom
    assert right - left == bottom - top == 8  # a quarter of the image at least
    region = crop(spot, (32, 32))
    assert region.size == (8, 8) and max(region.convert("L").getextrema()) > 200


def test_model_output_examples_use_the_whole_image(folder):
    logits = fs.LoadedModel(nn.Sequential(ColourNet(), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                            "pooled", (3, 32, 32), identity_normalization(3))
    found = top_examples(logits, [fs.class_logit(1)], folder, k=1, progress=False)
    best = found.by_target["logit:1"][0]
    assert name(best) == "green.png" and best.box == (0, 0, 32, 32)


def test_folder_errors(colour_model, tmp_path):
    with pytest.raises(fs.FeatscopeError, match="is not a folder"):
        find_images(tmp_path / "missing")
    with pytest.raises(fs.FeatscopeError, match="no images under"):
        find_images(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(fs.FeatscopeError, match="none of the 1 image files"):
        top_examples(colour_model, [fs.channel("conv", 0)], tmp_path, progress=False)
