import torch
import torch.nn.functional as F

import featscope.transforms as tf


def smooth_image(side: int = 64) -> torch.Tensor:
    torch.manual_seed(0)
    return F.interpolate(torch.rand(2, 3, 6, 6), size=side, mode="bicubic", align_corners=False)


def test_fused_affine_equals_pad_and_crop_without_scale_or_rotation():
    image = smooth_image(32)
    # 32 px + 2 * 3 pad - 2 - 1 jitter = 35 px: a pure crop, no resampling.
    fused = tf.random_affine(32, (35, 35), pad_px=3, shifts=(2, 1), scales=[1.0], degrees=[0])
    chain = tf.compose(tf.pad(3), tf.jitter(2), tf.jitter(1))
    for seed in range(4):
        a = fused(image, torch.Generator().manual_seed(seed))
        b = chain(image, torch.Generator().manual_seed(seed))
        assert a.shape == b.shape == (2, 3, 35, 35)
        assert torch.allclose(a, b, atol=1e-5)


def test_fused_affine_matches_the_chain_of_lucid_transforms():
    image = smooth_image(224)
    fused = tf.random_affine(224, (224, 224))
    chain = tf.compose(tf.lucid_transforms(224), tf.resize((224, 224)))
    for seed in range(6):
        a = fused(image, torch.Generator().manual_seed(seed))
        b = chain(image, torch.Generator().manual_seed(seed))
        # Equal up to resampling and the corners that rotation exposes (fill vs zeros).
        inner = (slice(None), slice(None), slice(40, -40), slice(40, -40))
        assert (a[inner] - b[inner]).abs().mean() < 0.01


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
