"""Recompute featscope/data/natural_spectrum.npy from scikit-image's colour sample photos.

    python -m tools.make_spectrum     (from the repository root)

The photos (astronaut, chelsea, coffee, rocket, hubble_deep_field,
immunohistochemistry) ship with scikit-image; nothing is downloaded. The result is the mean
log-magnitude spectrum, (3, 128, 128) float16, in the decorrelated colour space.
"""

from pathlib import Path

import numpy as np
import skimage.data
import torch

from featscope.params.spectrum import spectrum_from_images

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry")


def main() -> None:
    images = [torch.from_numpy(np.asarray(getattr(skimage.data, name)())[..., :3].copy())
              .permute(2, 0, 1).float().div(255) for name in PHOTOS]
    spectrum = spectrum_from_images(images)
    target = Path(__file__).resolve().parent.parent / "featscope" / "data" / "natural_spectrum.npy"
    np.save(target, spectrum.numpy().astype(np.float16))
    print(f"wrote {target} {tuple(spectrum.shape)} from {len(images)} photos")


if __name__ == "__main__":
    main()
