"""Directions in a layer's feature space, from a file or from a photo.

``toward_image(model, layer, photo)`` is the ``Direction`` of the photo's own features at
``layer``: rendering it searches for the image whose features there are closest (cosine)
to the photo's — at a CLIP-style encoder's embedding, the image the encoder finds closest
to the photo; at an inner layer with a map, position by position, Lucid's feature inversion
(and, started from the photo with ``--from-image``, a caricature). ``read_direction`` reads
a direction saved as ``.npy``: (C,) for every position, or (C, *S) per position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..engine.device import module_device
from ..engine.probing import Probe, frozen
from ..errors import FeatscopeError
from ..files.images import fit, load_image, mode_for
from ..models import LoadedModel
from ..objectives.binding import bind_objectives
from ..objectives.features import Direction, LayerObjective
from .api import as_loaded


def read_direction(path: str | Path) -> torch.Tensor:
    """A direction saved with ``numpy.save``: (C,) or (C, *S), float."""
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise FeatscopeError(f"cannot read direction {str(path)!r}: {error}; expected a .npy "
                             "array of shape (C,) or (C, *S)") from None
    if vector.dtype.kind not in "fiu" or vector.ndim == 0 or not np.isfinite(vector).all():
        raise FeatscopeError(f"direction {str(path)!r} must be a finite numeric array of shape "
                             f"(C,) or (C, *S); got {vector.dtype} {vector.shape}")
    return torch.from_numpy(vector.astype(np.float32))


@torch.no_grad()
def features_of(model: nn.Module | LoadedModel, layer: str, image: torch.Tensor | str | Path,
                layout: str | None = None, prefix: int | None = None) -> torch.Tensor:
    """The features (C, *S) of ``image`` ((C, H, W) in [0, 1], or an image file) at
    ``layer`` (``MODEL_OUTPUT``, "", for the model's output), as the layer's layout reads
    them: its map, or its patch tokens on their grid."""
    loaded = as_loaded(model)
    if not loaded.is_image:
        raise FeatscopeError("a direction toward an image needs an image model (input (C, H, W))")
    if not isinstance(image, torch.Tensor):
        image = load_image(image, mode_for(loaded.input_shape[0]))
    reader = bind_objectives([LayerObjective(layer, layout=layout, prefix=prefix)],
                             loaded.module, loaded.input_shape)[0]
    device = module_device(loaded.module)
    x = loaded.normalization.to(device)(fit(image, tuple(loaded.input_shape[1:]))[None].to(device))
    with frozen(loaded.module), Probe(loaded.module, [layer]) as probe:
        act = probe.run(x)[layer]
    return reader.feature_map(act)[0].float().cpu()


def toward_image(model: nn.Module | LoadedModel, layer: str, image: torch.Tensor | str | Path,
                 layout: str | None = None, prefix: int | None = None,
                 name: str | None = None) -> Direction:
    """The direction of ``image``'s features at ``layer`` (cosine similarity; see the module
    docstring)."""
    vector = features_of(model, layer, image, layout, prefix)
    if name is None:
        source = "image" if isinstance(image, torch.Tensor) else Path(image).stem
        name = f"{layer or 'output'}~{source}"
    return Direction(layer, vector, cosine=True, layout=layout, prefix=prefix, name=name)
