"""A folder in which every command of the README and docs can run as written: the files
and packages they name (``mypkg``, ``model.pt2``, ``bounds.csv``, ``photos/``, ``photo.jpg``,
``v.npy``, ...), built with random weights, nothing downloaded."""

import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MYPKG = {
    "nets.py": '''
        import torch
        from torch import nn


        class Net(nn.Module):
            """A small image classifier: stem, three blocks, 10 logits."""

            input_shape = (3, 64, 64)

            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
                self.block1 = nn.Sequential(nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU())
                self.block2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
                self.block3 = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
                self.head = nn.Linear(32, 10)

            def features(self, x):
                return self.block3(self.block2(self.block1(self.stem(x)))).mean((2, 3))

            def forward(self, x):
                return self.head(self.features(x))


        class TwoHeads(Net):
            def forward(self, x):
                features = self.features(x)
                return {"features": features, "logits": self.head(features)}


        class TwoInputs(nn.Module):
            """An image and a vector of 10 numbers in; a dict of logits out."""

            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.image = Net()
                self.vector = nn.Linear(10, 32)
                self.head = nn.Linear(64, 5)

            def forward(self, image, vector):
                both = torch.cat([self.image.features(image), self.vector(vector)], dim=1)
                return {"logits": self.head(both)}


        def build():
            return Net()


        def two_heads():
            return TwoHeads()


        def two_inputs():
            return TwoInputs()
    ''',
    "audio.py": '''
        import torch
        from torch import nn


        class Audio(nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.conv1 = nn.Conv1d(1, 8, 9, stride=4)
                self.conv2 = nn.Conv1d(8, 16, 9, stride=4)
                self.conv3 = nn.Conv1d(16, 16, 9, stride=4)

            def forward(self, x):
                return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


        def build():
            return Audio()
    ''',
    "ct.py": '''
        import torch
        from torch import nn


        class Scan(nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.layer1 = nn.Sequential(nn.Conv3d(1, 4, 3, stride=2, padding=1), nn.ReLU())
                self.layer2 = nn.Conv3d(4, 8, 3, stride=2, padding=1)

            def forward(self, x):
                return self.layer2(self.layer1(x))


        def build():
            return Scan()
    ''',
    "tabular.py": '''
        import torch
        from torch import nn


        class Tabular(nn.Module):
            input_shape = (4,)
            feature_names = ["age", "income", "height", "score"]

            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.fc1 = nn.Linear(4, 8)
                self.fc2 = nn.Linear(8, 3)

            def forward(self, x):
                return self.fc2(torch.relu(self.fc1(x)))


        def build():
            return Tabular()
    ''',
    "text.py": '''
        import torch
        from torch import nn


        class Text(nn.Module):
            vocab = [f"word{i}" for i in range(20)]

            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.embed = nn.Embedding(20, 8)
                self.encoder = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                          batch_first=True)
                self.head = nn.Linear(8, 3)

            def forward(self, ids):
                return self.head(self.encoder(self.embed(ids)).mean(1))


        def build():
            return Text()
    ''',
    "clip.py": '''
        import torch

        from tests.transformer_models import SequenceFirstImageTower, SequenceFirstTextTower


        def image_tower():
            """A CLIP-style image tower on 64 px images: a 16-number embedding."""
            torch.manual_seed(0)
            tower = SequenceFirstImageTower(side=64)
            tower.input_shape = (3, 64, 64)
            return tower


        def text_tower():
            """A CLIP-style text tower (token_embedding: 20 tokens): an 8-number embedding."""
            torch.manual_seed(0)
            return SequenceFirstTextTower()
    ''',
    "swin.py": '''
        import torch
        from torch import nn


        class Stage(nn.Module):
            """Channels last (B, H, W, C): every ``stride``-th pixel, a layer norm, an MLP."""

            def __init__(self, channels_in, channels, stride):
                super().__init__()
                self.stride = stride
                self.norm = nn.LayerNorm(channels_in)
                self.mlp = nn.Sequential(nn.Linear(channels_in, channels), nn.GELU())

            def forward(self, x):
                return self.mlp(self.norm(x[:, ::self.stride, ::self.stride]))


        class Swin(nn.Module):
            """A Swin-like classifier whose stages keep channels last."""

            input_shape = (3, 64, 64)

            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.patch_embed = nn.Conv2d(3, 16, 4, stride=4)
                self.stages = nn.Sequential(Stage(16, 16, 1), Stage(16, 32, 2), Stage(32, 64, 2))
                self.head = nn.Linear(64, 10)

            def forward(self, x):
                x = self.patch_embed(x).permute(0, 2, 3, 1)  # (B, H, W, C)
                return self.head(self.stages(x).mean((1, 2)))


        def build():
            return Swin()
    ''',
}


def build_sandbox(root: Path) -> Path:
    """Write every file the documented commands name into ``root``; returns ``root``."""
    import sys

    package = root / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, code in MYPKG.items():
        (package / name).write_text(textwrap.dedent(code).lstrip())
    (root / "nets.py").write_text(textwrap.dedent(MYPKG["nets.py"]).lstrip())
    sys.path.insert(0, str(root))
    try:
        import mypkg.nets as nets
        _write_models(root, nets)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
            del sys.modules[name]
    (root / "bounds.csv").write_text("feature,low,high\nage,18,90\nincome,0,\nheight,1.4,2.1\n"
                                     "score,-1,1\n")
    (root / "vocab.txt").write_text("\n".join(f"word{i}" for i in range(20)) + "\n")
    _photos(root / "photos")
    Image.open(root / "photos" / "chelsea.png").convert("RGB").save(root / "photo.jpg")
    np.save(root / "v.npy", np.random.default_rng(0).standard_normal(8).astype(np.float32))
    return root


def _write_models(root: Path, nets) -> None:
    from safetensors.torch import save_file

    net = nets.build().eval()
    save_file(net.state_dict(), str(root / "weights.safetensors"))
    torch.save(net, root / "whole_model.pt")
    torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, 224, 224)), str(root / "model.pt"))
    exported = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                   torch.nn.Linear(16, 5)).eval()
    # Wrapped, so that "features.2" names a layer, as the docs do.
    program = torch.export.export(_Features(exported).eval(), (torch.rand(1, 3, 32, 32),))
    torch.export.save(program, str(root / "model.pt2"))
    _onnx(root / "model.onnx")
    import timm
    convnext = timm.create_model("convnext_tiny", pretrained=False)
    save_file(convnext.state_dict(), str(root / "convnext.safetensors"))


class _Features(torch.nn.Module):
    def __init__(self, features: torch.nn.Module):
        super().__init__()
        self.features = features

    def forward(self, x):
        return self.features(x)


def _onnx(path: Path) -> None:
    """A Keras-style ONNX graph: its second convolution's node is named "conv2d_3/Conv"."""
    import onnx

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, padding=1)).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False)
    graph = onnx.load(str(path))
    convs = [node for node in graph.graph.node if node.op_type == "Conv"]
    convs[-1].name = "conv2d_3/Conv"
    onnx.save(graph, str(path))


def _photos(folder: Path) -> None:
    import skimage.data

    folder.mkdir()
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        Image.fromarray(np.asarray(getattr(skimage.data, name)())).save(folder / f"{name}.png")
