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


@pytest.mark.parametrize("name, side", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_judge_loads_and_classifies_sample_images(name, side):
    judge = fs.load_model(name)
    assert judge.input_shape == (3, side, side)
    x = torch.cat([eval_crop(skimage_data.chelsea(), side),
                   eval_crop(skimage_data.coffee(), side)])
    with torch.no_grad():
        top = judge.module(judge.normalization(x)).argmax(1).tolist()
    assert top[0] in {281, 282, 285} and top[1] == 967
