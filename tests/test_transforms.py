import torch
import torch.nn.functional as F

import featscope.transforms as tf


def smooth_image(side: int = 64) -> torch.Tensor:
    torch.manual_seed(0)
    return F.interpolate(torch.rand(2, 3, 6, 6), size=side, mode="bicubic", align_corners=False)


def window(side: int, fill: float = 0.5):
    """A transform: the ``side`` px region around the centre (padded with ``fill``)."""
    def windowed(image: torch.Tensor, random) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_h, pad_w = max(0, side - height), max(0, side - width)
        image = F.pad(image - fill, (pad_w // 2, pad_w - pad_w // 2,
                                     pad_h // 2, pad_h - pad_h // 2)) + fill
        top, left = (image.shape[-2] - side) // 2, (image.shape[-1] - side) // 2
        return image[..., top:top + side, left:left + side]
    return windowed


def test_fused_affine_equals_pad_and_crop_without_scale_or_rotation():
    image = smooth_image(32)
    # 32 px + 2 * 3 pad - 2 - 2 jitter = 34 px, and its middle 32 px: a pure crop (the
    # scale and the rotation of 1 and 0 draw as the fused transform does).
    fused = tf.random_affine(32, (32, 32), pad_px=3, shifts=(2, 2), scales=[1.0], degrees=[0])
    chain = tf.compose(tf.pad(3), tf.jitter(2), tf.random_scale([1.0]), tf.random_rotate([0]),
                       tf.jitter(2), window(32))
    for seed in range(4):
        a = fused(image, torch.Generator().manual_seed(seed))
        b = chain(image, torch.Generator().manual_seed(seed))
        assert a.shape == b.shape == (2, 3, 32, 32)
        assert torch.allclose(a, b, atol=1e-5)


def test_fused_affine_matches_the_chain_of_lucid_transforms_seen_through_a_window():
    image = smooth_image(224)
    fused = tf.random_affine(224, (224, 224))
    chain = tf.compose(tf.lucid_transforms(224), window(224))
    for seed in range(6):
        a = fused(image, torch.Generator().manual_seed(seed))
        b = chain(image, torch.Generator().manual_seed(seed))
        # Equal up to resampling and the corners that rotation exposes (fill vs zeros).
        inner = (slice(None), slice(None), slice(40, -40), slice(40, -40))
        assert (a[inner] - b[inner]).abs().mean() < 0.01


def period(image: torch.Tensor) -> float:
    """The period in px of a grating that varies along x: the peak of its spectrum."""
    row = image[0, 0].mean(0) - image[0, 0].mean()
    spectrum = torch.fft.rfft(row, n=8192).abs()
    return 8192 / float(spectrum[1:].argmax() + 1)


def test_the_scale_draw_scales_the_content_the_model_sees():
    # A grating of period 16 px, scaled by 1.1 (no rotation): the model sees a period of
    # 17.6 px. Resizing the padded canvas back to 224 px would undo the scale and shrink
    # the content by the padding's share instead.
    x = torch.arange(224.0)
    grating = (0.5 + 0.4 * torch.cos(2 * torch.pi * x / 16)).expand(1, 3, 224, 224)
    for scale in (0.9, 1.1):
        fused = tf.random_affine(224, (224, 224), scales=[scale], degrees=[0])
        seen = fused(grating, torch.Generator().manual_seed(0))
        assert abs(period(seen) - 16 * scale) < 0.2, (scale, period(seen))
    # An image of another side is first resized to the output size.
    small = tf.random_affine(112, (224, 224), scales=[1.0], degrees=[0])
    half = grating[..., ::2, ::2].contiguous()  # period 8 px at 112
    assert abs(period(small(half, torch.Generator().manual_seed(0))) - 16) < 0.2


def test_transforms_are_deterministic_per_generator_and_keep_gradients():
    image = smooth_image(64).requires_grad_(True)
    fused = tf.random_affine(64, (48, 48))
    a = fused(image, torch.Generator().manual_seed(3))
    b = fused(image, torch.Generator().manual_seed(3))
    assert a.shape == (2, 3, 48, 48) and torch.equal(a, b)
    a.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_lucid_transforms_scale_with_image_size():
    small = tf.lucid_transforms(32)(smooth_image(32), torch.Generator().manual_seed(0))
    assert 28 <= small.shape[-1] <= 40  # 32 + 2*2 pad - 1 - 1 jitter, scaled by 0.9..1.1
