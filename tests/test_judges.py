"""The second and third ImageNet models (EfficientNet-Lite1 and -Lite2), which judge whether
visualizations transfer."""

import numpy as np
import pytest
import torch
from PIL import Image

import featscope as fs

skimage_data = pytest.importorskip("skimage.data")


def eval_crop(array: np.ndarray, side: int) -> torch.Tensor:
    """Resize the short side to side * 8/7, centre-crop side: (1, 3, side, side) in [0, 1]."""
    image = Image.fromarray(array).convert("RGB")
    scale = side * 8 / 7 / min(image.size)
    image = image.resize([round(s * scale) for s in image.size], Image.BICUBIC)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)[None]


def test_lite1_loads_and_classifies_sample_images():
    lite1 = fs.load_model("efficientnet_lite1")
    assert lite1.input_shape == (3, 240, 240)
    x = torch.cat([eval_crop(skimage_data.chelsea(), 240), eval_crop(skimage_data.coffee(), 240)])
    with torch.no_grad():
        top = lite1.module(lite1.normalization(x)).argmax(1).tolist()
    assert top[0] in {281, 282, 285} and top[1] == 967


def test_lite2_loads_and_classifies_sample_images():
    lite2 = fs.load_model("efficientnet_lite2")
    assert lite2.input_shape == (3, 260, 260)
    x = torch.cat([eval_crop(skimage_data.chelsea(), 260), eval_crop(skimage_data.coffee(), 260)])
    with torch.no_grad():
        top = lite2.module(lite2.normalization(x)).argmax(1).tolist()
    assert top[0] in {281, 282, 285} and top[1] == 967
