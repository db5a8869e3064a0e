"""Pictures: labelled grids of images, and plots of signals and volumes."""

from .grid import as_pictures, fit_text, grid, label_height, overview, png_bytes
from .plots import montage, nice_ticks, signal_plot, spectrogram

__all__ = ["as_pictures", "fit_text", "grid", "label_height", "overview", "png_bytes",
           "montage", "nice_ticks", "signal_plot", "spectrogram"]
