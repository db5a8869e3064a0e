"""Model files: torch.export programs (.pt2) with inner layers probed under their original
names, any batch size and gradients to the input; TorchScript without its deprecation warning."""

import warnings

import pytest
import torch
from torch import nn

import featscope as fs
from featscope import FeatscopeError
from featscope.models.exported import FixedBatch

from .models import ConvNet


def tiny() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5)).eval()


class Features(nn.Module):
    """Nested paths (features.2), and a reshape that export records with the batch size."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.head(self.features(x).reshape(x.shape[0], -1))


def exported(model: nn.Module, path, example, **options) -> str:
    torch.export.save(torch.export.export(model.eval(), (example,), **options), str(path))
    return str(path)


def layer(loaded, name: str) -> nn.Module:
    return dict(loaded.module.named_modules())[name]


def test_exported_program_inner_layers_fire_hooks_take_any_batch_and_pass_gradients(tmp_path):
    model = tiny()
    loaded = fs.load_model(exported(model, tmp_path / "tiny.pt2", torch.rand(1, 3, 32, 32)))
    assert loaded.input_shape == (3, 32, 32)
    assert [name for name, _ in loaded.module.named_modules()] == [
        "", "0", "1", "2", "3", "4", "5", "6"]
    seen = []
    layer(loaded, "3").register_forward_hook(lambda m, i, output: seen.append(output.shape))
    for batch in (2, 3):
        x = torch.rand(batch, 3, 32, 32, requires_grad=True)
        y = loaded.module(x)
        assert torch.allclose(y, model(x), atol=1e-5)
        y[:, 1].sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert seen == [(2, 16, 32, 32), (3, 16, 32, 32)]
    assert loaded.notes == ()  # batch-generic: runs as one batch


def test_program_specialized_to_batch_1_runs_batches_slice_by_slice(tmp_path):
    model = Features()
    loaded = fs.load_model(exported(model, tmp_path / "f.pt2", torch.rand(1, 3, 8, 8)))
    assert isinstance(loaded.module, FixedBatch) and "batch size 1 only" in loaded.notes[0]
    assert [n for n, _ in loaded.module.named_modules()][:4] == [
        "", "features", "features.0", "features.1"]
    assert loaded.module.get_submodule("features.1") is layer(loaded, "features.1")
    seen = []
    layer(loaded, "features.1").register_forward_hook(lambda m, i, out: seen.append(out))
    x = torch.rand(3, 3, 8, 8, requires_grad=True)
    y = loaded.module(x)
    assert torch.allclose(y, model(x), atol=1e-5)
    [hooked] = seen  # once per forward, for the whole batch
    assert torch.allclose(hooked, model.features[1](model.features[0](x)), atol=1e-5)
    hooked[:, 2].sum().backward()  # what a probe on features.1 differentiates
    assert x.grad.abs().sum() > 0


def test_search_on_a_batch_1_program_matches_the_python_model(tmp_path):
    model = Features()
    loaded = fs.load_model(exported(model, tmp_path / "f.pt2", torch.rand(1, 3, 8, 8)))
    targets = [fs.channel("features.2", k) for k in range(3)]
    runs = []
    for candidate in (loaded, fs.LoadedModel(model, "python", (3, 8, 8))):
        torch.manual_seed(1)
        runs.append(fs.render(candidate, targets, steps=6, lr=0.05, transforms="none"))
    assert torch.allclose(runs[0].images, runs[1].images, atol=1e-4)
    assert torch.allclose(runs[0].final, runs[1].final, atol=1e-4)
    assert (runs[0].final > runs[0].initial).all()


def test_command_line_lists_and_renders_the_layers_of_a_batch_1_program(tmp_path):
    from typer.testing import CliRunner

    from featscope.cli import app
    path = exported(Features(), tmp_path / "f.pt2", torch.rand(1, 3, 8, 8))
    listing = CliRunner().invoke(app, ["layers", "--model", path])
    assert listing.exit_code == 0 and "features.2" in listing.output
    assert "(4, 4, 4)" in listing.output
    render = CliRunner().invoke(app, ["render", "features.2:0", "features.0:1", "--model", path,
                                      "--steps", "3", "--quiet", "--out", str(tmp_path / "out")])
    assert render.exit_code == 0, (render.output, render.exception)
    assert (tmp_path / "out" / "features.2-0.png").is_file()


def test_last_slice_is_padded_for_a_program_exported_with_batch_2(tmp_path):
    model = Features()
    loaded = fs.load_model(exported(model, tmp_path / "f2.pt2", torch.rand(2, 3, 8, 8)))
    x = torch.rand(5, 3, 8, 8)
    assert torch.allclose(loaded.module(x), model(x), atol=1e-5)


def test_program_with_dynamic_batch_runs_directly(tmp_path):
    model = Features()
    batch = torch.export.Dim("batch")
    path = exported(model, tmp_path / "d.pt2", torch.rand(2, 3, 8, 8),
                    dynamic_shapes=({0: batch},))
    loaded = fs.load_model(path)
    assert not isinstance(loaded.module, FixedBatch) and loaded.input_shape == (3, 8, 8)
    x = torch.rand(7, 3, 8, 8)
    assert torch.allclose(loaded.module(x), model(x), atol=1e-5)


def test_program_saved_without_example_inputs_takes_its_shape_from_input_shape(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=4),
            3: torch.export.Dim("width", min=4)}
    program = torch.export.export(model.eval(), (torch.rand(2, 3, 8, 8),),
                                  dynamic_shapes=(dims,))
    program.example_inputs = None
    torch.export.save(program, str(tmp_path / "bare.pt2"))
    with pytest.raises(FeatscopeError, match="keeps no example inputs.*give --input-shape"):
        fs.load_model(str(tmp_path / "bare.pt2"))
    loaded = fs.load_model(str(tmp_path / "bare.pt2"), input_shape=(3, 16, 16))
    assert loaded.input_shape == (3, 16, 16)
    x = torch.rand(3, 3, 16, 16)
    assert torch.allclose(loaded.module(x), model(x), atol=1e-5)


def test_input_shape_that_the_program_cannot_take_is_refused(tmp_path):
    path = exported(tiny(), tmp_path / "tiny.pt2", torch.rand(1, 3, 32, 32))
    with pytest.raises(FeatscopeError, match=r"exported for inputs \(3, 32, 32\)"):
        fs.load_model(path, input_shape=(3, 64, 64))
    assert fs.load_model(path, input_shape=(3, 32, 32)).input_shape == (3, 32, 32)


def test_weights_file_replaces_the_programs_own(tmp_path):
    path = exported(tiny(), tmp_path / "tiny.pt2", torch.rand(1, 3, 32, 32))
    other = tiny()
    torch.save(other.state_dict(), tmp_path / "w.pth")
    loaded = fs.load_model(path, weights=str(tmp_path / "w.pth"))
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(loaded.module(x), other(x), atol=1e-5)


def test_pt2_file_that_is_not_an_exported_program(tmp_path):
    path = tmp_path / "bad.pt2"
    path.write_bytes(b"not a zip")
    with pytest.raises(FeatscopeError, match="cannot load torch.export file") as caught:
        fs.load_model(str(path))
    assert "\n" not in str(caught.value)


def test_torchscript_file_loads_without_its_deprecation_warning(tmp_path):
    path = tmp_path / "convnet.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(ConvNet().eval(), torch.zeros(1, 3, 8, 8)).save(str(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = fs.load_model(str(path), input_shape=(3, 8, 8))
    assert [str(w.message) for w in caught] == []
    assert loaded.module(torch.zeros(2, 3, 8, 8)).shape == (2, 5)
    # Only that warning is silenced, and only inside the loader.
    with pytest.warns(FutureWarning, match="torch.jit.load"):
        torch.jit.load(str(path))


def test_weights_file_applies_to_a_torchscript_model_too(tmp_path):
    path = tmp_path / "convnet.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(ConvNet().eval()).save(str(path))
    other = ConvNet().eval()
    torch.save(other.state_dict(), tmp_path / "w.pth")
    loaded = fs.load_model(str(path), weights=str(tmp_path / "w.pth"), input_shape=(3, 8, 8))
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(loaded.module(x), other(x), atol=1e-6)
