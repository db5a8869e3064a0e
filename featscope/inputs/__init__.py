"""Input kinds: images, signals, volumes, feature vectors, token embeddings and raw tensors;
how each is searched over and how its result is written."""

from .base import KIND_DIMS, KIND_LAYOUT, KINDS, InputKind, infer_kind
from .image import Image, alpha, with_alpha
from .raw import Raw
from .signal import Signal, dominant_frequency, save_wav
from .tokens import Tokens, hard_token_scores, read_vocab
from .vector import DEFAULT_RANGE, Vector, read_bounds
from .volume import Volume

__all__ = ["KIND_DIMS", "KIND_LAYOUT", "KINDS", "InputKind", "infer_kind", "Image", "alpha",
           "with_alpha", "Raw", "Signal", "dominant_frequency", "save_wav", "Tokens",
           "hard_token_scores", "read_vocab", "DEFAULT_RANGE", "Vector", "read_bounds", "Volume"]
