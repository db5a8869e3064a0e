"""MACO: fixed magnitude, searched phase, crop views, transparency, spectra."""

import numpy as np
import pytest
import torch
from PIL import Image

import featscope as fs
from featscope import params
from featscope.inputs.image import with_alpha
from featscope.params.spectrum import natural_spectrum, rfft_magnitude, spectrum_from_folder
from featscope.transforms.crops import CropSchedule, crop_views

from .models import ConvNet


def pre_sigmoid(image: torch.Tensor) -> torch.Tensor:
    """Undo the sigmoid and the colour recorrelation: the standardized spatial image."""
    logits = torch.logit(image.double())
    return torch.einsum("bchw,rc->brhw", logits, torch.linalg.inv(params.COLOR_CORRELATION).double())


def test_maco_keeps_the_magnitude_and_changes_only_the_phase():
    generator = torch.Generator().manual_seed(0)
    param = params.maco((2, 3, 32, 32), generator=generator, device=torch.device("cpu"))
    magnitude = param.buffers["magnitude"].clone()
    before = torch.fft.rfft2(pre_sigmoid(param()).detach(), norm="ortho")
    target = torch.zeros(2, 3, 32, 32)
    target[:, 0, :16] = 1.0  # any objective: make the top half red
    fs.ascend(lambda: -((param() - target) ** 2).mean(), param.params, steps=30, lr=0.1,
              optimizer=torch.optim.Adam)
    after = torch.fft.rfft2(pre_sigmoid(param()).detach(), norm="ortho")
    assert torch.equal(param.buffers["magnitude"], magnitude)
    # The image is standardized, so |spectrum| is the magnitude times one scale per image.
    # Columns 0 and W/2 are Hermitian-constrained by irfft2; the DC term is removed.
    inner = (slice(None), slice(None), slice(1, None), slice(1, 16))
    for spectrum in (before, after):
        ratio = spectrum.abs()[inner] / magnitude.double()[None][inner]
        scale = ratio.flatten(1).median(1).values[:, None, None, None]
        assert torch.allclose(ratio, scale.expand_as(ratio), rtol=1e-3)
    phase_change = torch.angle(after[inner] * before[inner].conj()).abs()
    assert phase_change.mean() > 0.05


def test_maco_renders_many_objectives_in_one_batch_with_transparency():
    model = ConvNet()
    objectives = [fs.channel("conv2", k) for k in range(3)]
    result = fs.render(model, objectives, input_shape=(3, 24, 24), preset="maco", steps=6,
                       size=48, crops=3)
    assert result.images.shape == (3, 3, 48, 48)
    assert result.transparency.shape == (3, 48, 48)
    assert (result.transparency >= 0).all() and result.transparency.sum() > 0
    rgba = with_alpha(result.images, result.transparency)
    assert rgba.shape == (3, 4, 48, 48) and 0 <= rgba.min() and rgba.max() <= 1
    assert not torch.equal(result.images[0], result.images[1])
    assert (result.final > result.initial).all()


def test_grayscale_maco_uses_the_luminance_spectrum():
    result = fs.render(ConvNet(channels=1), fs.channel("conv2", 1), input_shape=(1, 16, 16),
                       param="maco", steps=3, transforms="none")
    assert result.images.shape == (1, 1, 16, 16)
    magnitude = rfft_magnitude(natural_spectrum(), 16, 16, channels=1)
    assert magnitude.shape == (1, 16, 9)


def test_full_canvas_crop_is_the_resized_image():
    image = torch.rand(2, 3, 40, 40)
    schedule = CropSchedule(3, start=(1.0, 1.0), end=(1.0, 1.0))
    views = crop_views(image, schedule, (40, 40), 0.0, torch.Generator().manual_seed(0))
    assert views.shape == (6, 3, 40, 40)
    assert torch.allclose(views[4], image[1], atol=1e-5)


def test_crop_views_are_distinct_and_sized():
    image = torch.rand(1, 3, 64, 64)
    views = crop_views(image, CropSchedule(4, start=(0.3, 0.6), end=(0.3, 0.6), rotate=10),
                       (16, 16), 0.5, torch.Generator().manual_seed(1))
    assert views.shape == (4, 3, 16, 16)
    assert not torch.allclose(views[0], views[1])


def test_bad_crop_sizes_are_rejected():
    with pytest.raises(fs.FeatscopeError, match="0 < low <= high <= 1.5"):
        CropSchedule(2, start=(0.5, 1.6))
    with pytest.raises(fs.FeatscopeError, match="0 < low <= high"):
        CropSchedule(2, end=(0.9, 0.8))


def test_zoomed_out_views_show_the_whole_canvas_on_grey():
    canvas = torch.full((2, 3, 40, 40), 0.9)
    schedule = CropSchedule(4, start=(1.25, 1.25), end=(1.25, 1.25))
    views = crop_views(canvas, schedule, (50, 50), 0.0, torch.Generator().manual_seed(0))
    assert views.shape == (8, 3, 50, 50)
    # Each view holds the 40 px canvas at 40 px (50 / 1.25), somewhere, on mid-grey.
    inside = (views - 0.9).abs() < 1e-4
    assert torch.allclose(inside.float().sum((1, 2, 3)), torch.full((8,), 3 * 40 * 40.0), atol=3 * 80)
    assert torch.allclose(views[..., 0, 0], torch.full((8, 3), 0.5), atol=0.05)


def test_spectrum_from_a_folder(tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    for name in ("chelsea", "coffee"):
        Image.fromarray(np.asarray(getattr(skimage_data, name)())).save(tmp_path / f"{name}.png")
    spectrum = spectrum_from_folder(tmp_path)
    assert spectrum.shape == natural_spectrum().shape and torch.isfinite(spectrum).all()
    # Natural images: far more energy at low than at high frequencies.
    c = spectrum.shape[-1] // 2
    assert (spectrum[:, c, c + 2] > spectrum[:, c, -1] + 2).all()
    result = fs.render(ConvNet(), fs.channel("conv2", 0), input_shape=(3, 16, 16), param="maco",
                       steps=2, spectrum=spectrum)
    assert result.images.shape == (1, 3, 16, 16)


def test_spectrum_from_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(fs.FeatscopeError, match="does not exist"):
        spectrum_from_folder(tmp_path / "nope")
    with pytest.raises(fs.FeatscopeError, match="holds no images"):
        spectrum_from_folder(tmp_path)
