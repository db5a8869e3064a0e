"""Parameterizations: the variables a search moves, and the function that turns them into an
input. Image parameterizations are registered by name (``PARAMETERIZATIONS``)."""

from .base import PARAMETERIZATIONS, Parameterization, parameterization, register_parameterization
from .color import COLOR_CORRELATION, decorrelate_colors, to_presigmoid, to_rgb
from .images import (
                     bounded_pixels,
                     fourier,
                     fourier_frequencies,
                     from_image,
                     maco,
                     model_space,
                     pixel,
)
from .spectrum import natural_spectrum, rfft_magnitude, spectrum_from_folder, spectrum_from_images
from .tensors import tensor

__all__ = ["PARAMETERIZATIONS", "Parameterization", "parameterization",
           "register_parameterization", "COLOR_CORRELATION", "decorrelate_colors",
           "to_presigmoid", "to_rgb", "bounded_pixels", "fourier", "fourier_frequencies",
           "from_image", "maco", "model_space", "pixel", "natural_spectrum", "rfft_magnitude",
           "spectrum_from_folder", "spectrum_from_images", "tensor"]
