"""A model whose input size is fixed (a timm ViT: its patch grid and position embeddings) told
to render at another size: one line that says which size would do, not timm's traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featscope import FeatscopeError
from featscope.cli import app
from featscope.models.metadata import fixed_input_size
from featscope.rendering.recipes import model_size, recipe

timm = pytest.importorskip("timm")
REPO = Path(__file__).resolve().parent.parent
EXIT_USER_ERROR = 2


def tiny_vit(dynamic: bool = False):
    from timm.models.vision_transformer import VisionTransformer
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                             num_classes=4, dynamic_img_size=dynamic)


def _factory(folder: Path) -> Path:
    path = folder / "vits.py"
    path.write_text(
        "from timm.models.vision_transformer import VisionTransformer\n"
        "def fixed():\n"
        "    return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1,\n"
        "                             num_heads=2, num_classes=4)\n"
        "def dynamic():\n"
        "    return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1,\n"
        "                             num_heads=2, num_classes=4, dynamic_img_size=True)\n")
    return path


def test_the_fixed_size_is_read_from_the_patch_embedding():
    assert fixed_input_size(tiny_vit()) == (32, 32)
    assert fixed_input_size(tiny_vit(dynamic=True)) is None  # any multiple of the patch
    assert fixed_input_size(timm.create_model("resnet18", pretrained=False)) is None


def test_cli_size_a_vit_cannot_take_is_one_line_and_exit_2(tmp_path):
    path = _factory(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "featscope", "render", "blocks.0:3", "--model",
                           f"{path}:fixed", "--size", "16", "--steps", "2", "--device", "cpu",
                           "--out", str(tmp_path / "out")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [s for s in done.stderr.splitlines() if s.startswith("error")]
    assert "takes only 32×32 inputs" in line and "size 16 would give it 16×16" in line
    assert "give --size 32 or leave --size out" in line


def test_cli_valid_sizes_still_render(tmp_path):
    path = _factory(tmp_path)
    for model in ("fixed", "dynamic"):
        run = CliRunner().invoke(app, ["render", "blocks.0:3", "--model", f"{path}:{model}",
                                       "--size", "32", "--steps", "2", "--device", "cpu",
                                       "--quiet", "--out", str(tmp_path / model)])
        assert run.exit_code == 0, (run.output, run.exception)


def test_a_preset_size_that_cannot_fit_names_the_preset():
    keras = recipe("keras")
    with pytest.raises(FeatscopeError, match=r"the keras preset's size 180 would give it "
                                             r"180×180: give --size 224$"):
        model_size(keras, (224, 224), (180, 180), fixed=(224, 224))
    assert model_size(recipe("pii", size=64), (224, 224), (64, 64)) == (64, 64)  # not fixed
    assert model_size(recipe("maco"), (224, 224), (512, 512), fixed=(224, 224)) == (224, 224)
