"""Weights files that do not fit: one clear line each, and key prefixes fixed when they explain
the whole mismatch."""

import random
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import featscope as fs
from featscope import FeatscopeError
from featscope.models import apply_weights, load_state_dict_file

from . import zoo
from .models import ConvNet


class Wrapped(nn.Module):
    """A model whose own keys carry a prefix: 'model.fc1.weight', ..."""

    def __init__(self):
        super().__init__()
        self.model = zoo.TabularMLP()

    def forward(self, x):
        return self.model(x)


def error_of(call) -> str:
    with pytest.raises(FeatscopeError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def garbage_files(folder):
    rng = random.Random(0)
    contents = {
        "text.pth": b"not a checkpoint at all",
        "random.pth": bytes(rng.randrange(256) for _ in range(4096)),
        "pickle_opcodes.pth": b"\x80\x02}q\x00(X\x01\x00\x00\x00ae" + bytes(range(101, 140)),
        "random.safetensors": bytes(rng.randrange(256) for _ in range(512)),
    }
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    with zipfile.ZipFile(folder / "other.zip.pt", "w") as archive:
        archive.writestr("readme.txt", "a zip that torch did not write")
    return sorted(folder.iterdir())


def test_garbage_weights_file_gives_one_line_without_internal_exception_text(tmp_path):
    for path in garbage_files(tmp_path):
        message = error_of(lambda path=path: load_state_dict_file(path))
        assert message.startswith(f"cannot read weights file {str(path)!r}: it is not a "
                                  "PyTorch state dict or a .safetensors file"), message
        assert ".safetensors file" in message and "state_dict()" in message  # what is valid
        for internal in ("KeyError", "Unpickling", "Weights only load failed", "header",
                         "PytorchStreamReader", "Traceback"):
            assert internal not in message, message


def test_whole_pickled_model_as_weights_says_it_is_a_model(tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(ConvNet(), path)
    message = error_of(lambda: load_state_dict_file(path))
    assert "pickled Python objects" in message and "--trust-pickle" in message


def test_torchscript_archive_as_weights_says_to_pass_it_as_the_model(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.trace(ConvNet().eval(), torch.zeros(1, 3, 8, 8)).save(str(path))
    message = error_of(lambda: load_state_dict_file(path))
    assert "is a torchscript model, not weights" in message and f"--model {path}" in message


def test_safetensors_content_under_a_pth_name_is_read(tmp_path):
    path = tmp_path / "really_safetensors.pth"
    save_file(zoo.TabularMLP().state_dict(), str(path))
    assert set(load_state_dict_file(path)) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_weights_of_another_architecture_give_one_line_with_counts_and_three_examples(tmp_path):
    import torchvision.models as tvm
    path = tmp_path / "resnet18.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), path)
    message = error_of(lambda: fs.load_model("torchvision:squeezenet1_1", weights=str(path)))
    assert len(message) < 700  # not PyTorch's wall of every key name
    assert "does not fit the model's architecture (SqueezeNet)" in message
    assert "52 of the model's keys are missing from it" in message
    assert "122 of its keys are not in the model" in message
    assert message.count("'features.") == 3 and "'layer1." not in message  # 3 examples each
    assert "another architecture" in message


def test_ddp_module_prefix_is_removed_when_it_explains_every_key(tmp_path):
    trained = zoo.TabularMLP()
    with torch.no_grad():
        trained.fc2.weight.mul_(3)
    path = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in trained.state_dict().items()}, path)
    loaded = fs.load_model("tests.zoo:TabularMLP", weights=str(path))
    assert torch.equal(loaded.module.fc2.weight, trained.fc2.weight)
    assert len(loaded.notes) == 1 and "removed the key prefix 'module.'" in loaded.notes[0]


@pytest.mark.parametrize("prefix", ["model.", "state_dict.", "_orig_mod.", "module.model."])
def test_any_shared_key_prefix_is_removed_when_it_explains_every_key(prefix, tmp_path):
    state = {f"{prefix}{k}": v for k, v in zoo.TabularMLP().state_dict().items()}
    target = zoo.TabularMLP()
    notes = apply_weights(target, _saved(state, tmp_path))
    assert torch.equal(target.fc1.weight, state[f"{prefix}fc1.weight"])
    assert repr(prefix) in notes[0]


def test_prefix_that_the_model_has_and_the_file_lacks_is_added(tmp_path):
    plain = zoo.TabularMLP()
    target = Wrapped()
    notes = apply_weights(target, _saved(plain.state_dict(), tmp_path))
    assert torch.equal(target.model.fc1.weight, plain.fc1.weight)
    assert "added the key prefix 'model.'" in notes[0]


def test_prefix_that_explains_only_part_of_the_mismatch_is_named_in_the_hint(tmp_path):
    state = {f"module.{k}": v for k, v in zoo.TabularMLP().state_dict().items()}
    state["module.extra.weight"] = torch.zeros(2)
    message = error_of(lambda: apply_weights(zoo.TabularMLP(), _saved(state, tmp_path)))
    assert "4 of the model's keys are missing from it" in message
    assert "5 of its keys are not in the model" in message
    assert "all its keys start with 'module.', which the model's keys lack" in message
    assert "apart from that 0 keys are still missing and 1 unexpected ('extra.weight')" in message


def test_shape_mismatch_gives_one_line_with_two_examples_and_both_shapes(tmp_path):
    other = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 7))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    message = error_of(lambda: apply_weights(model, _saved(other.state_dict(), tmp_path)))
    assert "4 tensor(s) have other shapes" in message
    assert "'0.weight' (16, 4) in the file vs (8, 4) in the model" in message
    assert "'0.bias' (16,) in the file vs (8,) in the model" in message
    assert "'2.weight'" not in message  # two examples only


def test_training_checkpoint_entry_is_read_and_noted(tmp_path):
    trained = zoo.TabularMLP()
    path = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 3, "model": trained.state_dict(), "optimizer": {"lr": 0.1}}, path)
    target = zoo.TabularMLP()
    torch.manual_seed(5)
    nn.init.normal_(target.fc1.weight)
    notes = apply_weights(target, path)
    assert torch.equal(target.fc1.weight, trained.fc1.weight)
    assert "entry 'model'" in notes[0]


def test_batchnorm_counter_missing_from_old_checkpoints_is_not_a_mismatch(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    state = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    assert apply_weights(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)),
                         _saved(state, tmp_path)) == ()


def _saved(state, folder) -> str:
    """``state`` written to a .safetensors file in ``folder`` (contiguous, as save_file needs)."""
    path = folder / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)
