"""What the model says about an image: class probabilities, as the class sheets label them."""

from __future__ import annotations

import torch

from ..engine.device import placed, resolve_device
from ..engine.probing import frozen
from ..errors import FeatscopeError
from ..models import LoadedModel
from ..transforms.affine import resize_to


def probabilities(loaded: LoadedModel, images: torch.Tensor,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """(B, C, H, W) images in [0, 1] -> (B, classes) softmax of the model's output.

    Images are resized to the model's input size, as ``render`` feeds them, and normalized.
    """
    if not loaded.is_image:
        raise FeatscopeError("class probabilities of images need a model with image input")
    target = resolve_device(device)
    x = resize_to(images.to(target), tuple(loaded.input_shape[1:]))
    with placed(loaded.module, target) as module, frozen(module), torch.no_grad():
        logits = module(loaded.normalization.to(target)(x))
    return logits.reshape(logits.shape[0], -1).softmax(dim=1).cpu()
