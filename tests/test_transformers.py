"""Transformers and today's architectures: token layouts with prefix tokens, sequence-first
and channels-last outputs, attention heads, Plug-In Inversion and directions in an
embedding space. Every model is built here with random weights; nothing is downloaded."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import featscope as fs
from featscope import FeatscopeError
from featscope.cli import app
from featscope.engine.layout import Layout, LayoutClues, infer_layout
from featscope.engine.probing import list_layers
from featscope.objectives import attention_reads, batch_scores, parse_target
from featscope.randomness import UnitRandom
from featscope.rendering.directions import features_of, toward_image
from featscope.rendering.recipes import Architecture, architecture_of, preset_for
from featscope.transforms.ensemble import Ensemble, roll
from tests import transformer_models as tm

timm = pytest.importorskip("timm")


def layers_of(model, shape):
    return {i.name: i for i in list_layers(model, torch.zeros(1, *shape))}


# -- layouts -------------------------------------------------------------------------------

def test_timm_vit_tokens_with_class_and_register_tokens():
    layers = layers_of(tm.tiny_timm_vit(img_size=64), (3, 64, 64))
    block = layers["blocks.1"].layout()
    assert block == Layout("BTC", prefix=3, grid=(4, 4))
    assert layers["blocks.1"].features() == 192
    assert block.describe(layers["blocks.1"].shape) == "tokens 3+4×4, 192 features"
    assert layers["blocks.1.mlp.act"].features() == 768 and layers["blocks.1.mlp.act"].mlp_hidden
    assert not layers["blocks.1.mlp.fc1"].mlp_hidden
    assert layers["patch_embed"].layout() == Layout("BTC", 0, (4, 4))  # before the prefix
    assert layers["patch_embed.proj"].layout() == Layout("BCHW")


def test_layers_of_a_model_that_takes_one_image_at_a_time():
    class OneAtATime(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            assert x.shape[0] == 1
            return self.conv(x).reshape(1, -1)

    layers = layers_of(OneAtATime(), (3, 8, 8))
    assert layers["conv"].batch_axis == 0 and layers["conv"].features() == 4


def test_token_count_split_without_the_model_saying():
    clues = LayoutClues(image=(64, 64))
    assert infer_layout((16, 8), 0, clues, order="BTC") == Layout("BTC", 0, (4, 4))
    assert infer_layout((19, 8), 0, clues, order="BTC") == Layout("BTC", 3, (4, 4))
    assert infer_layout((21, 8), 0, LayoutClues(image=(224, 224)), order="BTC") == \
        Layout("BTC", 5, (4, 4))
    # A text model's tokens: a sequence, no grid.
    assert infer_layout((7, 8), 0, LayoutClues(), order="BTC") == Layout("BTC", 0, None)
    with pytest.raises(FeatscopeError, match=r"1\+4×4 or 8\+3×3.*--prefix-tokens"):
        infer_layout((17, 8), 0, LayoutClues(image=(48, 48)), order="BTC")
    assert infer_layout((17, 8), 0, LayoutClues(image=(48, 48)), order="BTC", prefix=8) == \
        Layout("BTC", 8, (3, 3))


def test_impossible_declared_layouts_name_the_shapes():
    with pytest.raises(FeatscopeError, match=r"layout BTC needs a 3-D output.*\(B, 8, 4, 4\)"):
        infer_layout((8, 4, 4), 0, order="BTC", layer="conv")
    with pytest.raises(FeatscopeError, match=r"TBC does not fit.*\(B, 19, 8\).*axis 0"):
        infer_layout((19, 8), 0, order="TBC")
    with pytest.raises(FeatscopeError, match=r"\(19, B, 8\).*sequence-first"):
        infer_layout((19, 8), 1, order="BTC")
    with pytest.raises(FeatscopeError, match=r"unknown layout 'BTHC'"):
        infer_layout((19, 8), 0, order="BTHC")


def test_pooling_covers_patch_tokens_only():
    model = tm.KnownFilterViT()
    x = torch.rand(2, 3, 32, 32)
    [mean, top, cls, patch] = fs.objectives.bind_objectives(
        [fs.channel("tokens", 0), fs.channel("tokens", 0, pool="max"),
         fs.neuron("tokens", 1, "cls"), fs.neuron("tokens", 1, (2, 3))], model, (3, 32, 32))
    assert mean.layout == Layout("BTC", 3, (4, 4))
    with fs.Probe(model, ["tokens"]) as probe, torch.no_grad():
        acts = probe.run(x)
    tokens = acts["tokens"]  # (2, 3 + 16, C); the prefix tokens' feature 0 is 100
    assert torch.allclose(mean(acts), tokens[:, 3:, 0].mean(1))
    assert torch.allclose(top(acts), tokens[:, 3:, 0].amax(1)) and (top(acts) < 100).all()
    assert torch.equal(cls(acts), tokens[:, 0, 1])
    assert torch.equal(patch(acts), tokens[:, 3 + 2 * 4 + 3, 1])
    # The one-gather path of a batch scorer reads the same patch tokens.
    both = batch_scores([fs.channel("tokens", 0), fs.channel("tokens", 2)], acts)
    assert not torch.allclose(both[0], mean(acts))  # unbound: features first, the old way
    bound = fs.objectives.bind_objectives([fs.channel("tokens", 0), fs.channel("tokens", 2)],
                                          model, (3, 32, 32))
    assert torch.allclose(batch_scores(bound, acts), torch.stack(
        [tokens[0, 3:, 0].mean(), tokens[1, 3:, 2].mean()]))


def test_a_known_patch_filter_is_recovered():
    model = tm.KnownFilterViT()
    result = fs.render(model, fs.channel("tokens", 0), input_shape=(3, 32, 32), param="pixel",
                       transforms="none", preset="featscope", steps=60, lr=0.1, seed=0)
    image = result.images[0]  # (3, 32, 32): every 8 px patch should follow the filter's sign
    patches = image.unfold(1, 8, 8).unfold(2, 8, 8).permute(1, 2, 0, 3, 4).reshape(16, -1)
    correlation = [np.corrcoef(p.numpy(), model.filter.flatten().numpy())[0, 1] for p in patches]
    assert min(correlation) > 0.6, correlation
    assert result.final[0] > result.initial[0] + 5


def test_channels_last_maps():
    model = tm.ChannelsLastBlock()
    layers = layers_of(model, (3, 16, 16))
    assert layers["mix"].layout() == Layout("BHWC")
    assert layers["act"].layout() == Layout("BHWC") and layers["act"].features() == 24
    assert layers["mix"].layout().describe(layers["mix"].shape) == \
        "map 16×16 (channels last), 6 features"
    # Feature 2 of mix is w · rgb + b at every pixel: its optimum colour is sign(w).
    with torch.no_grad():
        model.mix.weight[2] = torch.tensor([-1.0, 0.8, -0.5])
    result = fs.render(model, fs.channel("mix", 2), input_shape=(3, 16, 16), steps=40,
                       preset="featscope", param="pixel", transforms="none", decorrelate=False,
                       lr=0.1, seed=0)
    colour = result.images[0].mean((1, 2)) - 0.5
    assert torch.equal(torch.sign(colour), torch.tensor([-1.0, 1.0, -1.0]))
    assert result.final[0] > result.initial[0]


def test_timm_convnext_and_swin_channels_last_layers():
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=4, conv_mlp=False)
    layers = layers_of(model.eval(), (3, 32, 32))
    assert layers["stages.0.blocks.0.mlp.fc1"].layout() == Layout("BHWC")
    assert layers["stages.0.blocks.0.mlp.act"].features() == 4 * 40
    assert layers["stages.0.blocks.0.conv_dw"].layout() == Layout("BCHW")
    assert layers["stages.0.blocks.0"].layout() == Layout("BCHW")
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, embed_dim=24,
                             depths=(1, 1), num_heads=(1, 2), img_size=56, num_classes=4)
    layers = layers_of(swin.eval(), (3, 56, 56))
    assert layers["layers.0"].layout() == Layout("BHWC") and layers["layers.0"].features() == 24
    assert layers["layers.0.blocks.0.mlp.act"].layout() == Layout("BTC", 0, (14, 14))
    assert layers["layers.0.blocks.0.attn"].batch_axis is None  # rows: images × windows
    with pytest.raises(FeatscopeError, match=r"\(4, 49, 24\) for one image and \(8, 49, 24\)"):
        layers["layers.0.blocks.0.attn"].layout()
    result = fs.render(swin, [fs.channel("layers.1", 3), fs.channel("layers.0.blocks.0.mlp.act",
                                                                     5)],
                       input_shape=(3, 56, 56), steps=12, seed=0, preset="featscope")
    assert (result.final > result.initial).all()


def test_sequence_first_tokens_are_found_and_rendered():
    model = tm.SequenceFirstImageTower()
    layers = layers_of(model, (3, 32, 32))
    block = layers["transformer.0"]
    assert block.batch_axis == 1 and block.layout() == Layout("TBC", 1, (4, 4))
    assert block.layout().describe(block.shape) == "sequence-first tokens 1+4×4, 24 features"
    assert layers["transformer.0.mlp.gelu"].mlp_hidden
    objectives = [fs.channel("transformer.0.mlp.gelu", 3), fs.neuron("transformer.1", 5, "cls"),
                  fs.neuron("transformer.1", 5, (1, 2))]
    result = fs.render(model, objectives, input_shape=(3, 32, 32), steps=30, seed=0,
                       preset="featscope")
    assert (result.final > result.initial).all(), (result.initial, result.final)
    bound = fs.objectives.bind_objectives(objectives, model, (3, 32, 32))
    x = torch.rand(3, 3, 32, 32)
    with fs.Probe(model, ["transformer.0.mlp.gelu", "transformer.1"]) as probe, \
            torch.no_grad():
        acts = probe.run(x)
    hidden, tokens = acts["transformer.0.mlp.gelu"], acts["transformer.1"]  # (T, B, C)
    expected = torch.stack([hidden[1:, 0, 3].mean(), tokens[0, 1, 5], tokens[1 + 6, 2, 5]])
    assert torch.allclose(batch_scores(bound, acts), expected, atol=1e-6)


def test_sequence_first_rows_of_a_shared_term():
    """A term shared by some elements of a batch reads their rows along the batch axis 1."""
    model = tm.SequenceFirstImageTower()
    vector = torch.randn(24)
    shared = fs.direction("transformer.0", vector)
    objectives = fs.objectives.bind_objectives(
        [shared, fs.channel("transformer.0", 1), shared], model, (3, 32, 32))
    with fs.Probe(model, ["transformer.0"]) as probe, torch.no_grad():
        acts = probe.run(torch.rand(3, 3, 32, 32))
    scores = batch_scores(objectives, acts)
    tokens = acts["transformer.0"][1:].transpose(0, 1)  # (B, 16, 24) patch tokens
    assert torch.allclose(scores[[0, 2]], (tokens[[0, 2]] @ vector).mean(1), atol=1e-5)


def test_declared_layout_overrides_and_feature_axis_still_works():
    act = torch.randn(2, 7, 6)  # (B, T, C)
    assert torch.allclose(fs.channel("l", 5, feature_axis=-1)({"l": act}), act[..., 5].mean(1))
    assert torch.allclose(fs.channel("l", 5, layout="BTC")({"l": act}), act[..., 5].mean(1))
    assert torch.allclose(fs.channel("l", 5, layout="BTC", prefix=2)({"l": act}),
                          act[:, 2:, 5].mean(1))
    with pytest.raises(FeatscopeError, match="feature_axis 2 is not supported"):
        fs.channel("l", 1, feature_axis=2)


# -- attention -----------------------------------------------------------------------------

def test_attention_head_objective_matches_the_weights():
    model = tm.tiny_timm_vit(img_size=32)
    for block in model.blocks:
        block.attn.fused_attn = False  # so that attn_drop sees the weights (B, heads, T, T)
    from_queries = parse_target("blocks.1.attn:head2@cls/1,0", model)
    from_weights = parse_target("blocks.1.attn.attn_drop:head2@cls/1,0", model)
    assert attention_reads(model, "blocks.1.attn").queries == "blocks.1.attn.q_norm"
    bound = fs.objectives.bind_objectives([from_queries, from_weights, parse_target(
        "blocks.1.attn:head0@1,1", model)], model, (3, 32, 32))
    assert bound[0].layout == Layout("BTC", 3, (2, 2))
    layers = sorted(set().union(*(o.layers for o in bound)))
    with fs.Probe(model, layers) as probe, torch.no_grad():
        acts = probe.run(torch.rand(2, 3, 32, 32))
    weights = acts["blocks.1.attn.attn_drop"]  # (B, 3, 7, 7): 3 prefix + 2×2 patches
    patch = 3 + 1 * 2 + 0
    assert torch.allclose(bound[0](acts), weights[:, 2, 0, patch], atol=1e-6)
    assert torch.allclose(bound[1](acts), weights[:, 2, 0, patch], atol=1e-6)
    own = 3 + 1 * 2 + 1
    assert torch.allclose(bound[2](acts), 1 - weights[:, 0, own, own], atol=1e-6)


def test_attention_renders_and_rises():
    model = tm.tiny_timm_vit(img_size=32)
    objective = parse_target("blocks.1.attn:head1@cls/0,1", model)
    result = fs.render(model, objective, input_shape=(3, 32, 32), steps=30, seed=0,
                       preset="featscope")
    assert result.final[0] > result.initial[0]


def test_attention_target_errors():
    model = tm.tiny_timm_vit(img_size=32)
    with pytest.raises(FeatscopeError, match="head 7 is out of range.*valid 0..2"):
        fs.render(model, parse_target("blocks.0.attn:head7@cls/0,0", model),
                  input_shape=(3, 32, 32), steps=1)
    with pytest.raises(FeatscopeError, match="outside the patch grid 2×2"):
        fs.render(model, parse_target("blocks.0.attn:head0@cls/5,0", model),
                  input_shape=(3, 32, 32), steps=1)
    with pytest.raises(FeatscopeError, match="names the attending token"):
        parse_target("blocks.0.attn:head0", model)
    with pytest.raises(FeatscopeError, match="MultiheadAttention"):
        parse_target("transformer.0.attn:head0@cls", tm.SequenceFirstImageTower())


# -- the recipe ----------------------------------------------------------------------------

def test_auto_picks_plug_in_inversion_for_transformers_only():
    vit = architecture_of(tm.tiny_timm_vit())
    assert vit == Architecture(batchnorm=False, layernorm=True, image=True) and vit.transformer
    assert preset_for(fs.channel("blocks.1", 0), architecture=vit) == "pii"
    assert preset_for(fs.class_logit(1), architecture=vit) == "pii"
    assert preset_for(fs.channel("blocks.1", 0), "featscope", vit) == "featscope"
    cnn = architecture_of(timm.create_model("resnet10t", pretrained=False))
    assert not cnn.transformer and preset_for(fs.class_logit(1), architecture=cnn) == "legible"
    text = architecture_of(tm.SequenceFirstTextTower(), image=False)
    assert not text.transformer


def test_ensemble_copies_draw_per_unit_and_keep_the_original():
    image = torch.rand(2, 3, 8, 8)
    ensemble = Ensemble(4, shift=0.25, color=1.0, noise=0.5, original=True)
    half = torch.full((3,), 0.5)
    views = ensemble.views(image, 0.0, UnitRandom([1, 2]), half, half, (8, 8))
    assert views.shape == (8, 3, 8, 8)
    assert torch.equal(views[0], image[0]) and torch.equal(views[4], image[1])
    assert not torch.allclose(views[1], image[0])
    alone = ensemble.views(image[1:], 0.0, UnitRandom([2]), half, half, (8, 8))
    assert torch.allclose(alone, views[4:])  # unit 2's copies do not depend on unit 1
    shifted = roll(image, torch.tensor([[1, -2], [3, 0]]))
    assert torch.equal(shifted[0], torch.roll(image[0], (1, -2), (1, 2)))
    assert torch.equal(shifted[1], torch.roll(image[1], (3, 0), (1, 2)))


def test_growing_canvas_schedule():
    pii = fs.PRESETS["pii"]
    assert [pii.canvas(p) for p in (0.0, 0.15, 0.5, 0.99, 1.0)] == [0.25, 0.375, 0.625, 1.0, 1.0]
    assert fs.PRESETS["featscope"].canvas(0.0) == 1.0


def test_plug_in_inversion_units_do_not_depend_on_their_batch():
    model = tm.KnownFilterViT()
    common = {"input_shape": (3, 32, 32), "steps": 6, "seed": 3, "preset": "pii"}
    together = fs.render(model, [fs.channel("tokens", 1), fs.channel("fc1", 4)], **common)
    alone = fs.render(model, fs.channel("fc1", 4), **common)
    assert together.units[1].preset == "pii"
    assert torch.allclose(together.images[1], alone.images[0], atol=1e-6)


def test_plug_in_inversion_rises_on_a_vit():
    model = tm.tiny_timm_vit(img_size=32)
    result = fs.render(model, [fs.channel("blocks.1.mlp.act", 5), fs.class_logit(2)],
                       input_shape=(3, 32, 32), steps=40, seed=0)
    assert [u.preset for u in result.units] == ["pii", "pii"]
    assert (result.final > result.initial).all(), (result.initial, result.final)


# -- directions ----------------------------------------------------------------------------

def test_toward_image_finds_an_image_the_encoder_sees_like_the_photo():
    model = tm.SequenceFirstImageTower()
    loaded = fs.LoadedModel(model, "tower", (3, 32, 32))
    photo = torch.zeros(3, 32, 32)
    photo[0, :, :16], photo[2, :, 16:], photo[1, 8:16, 8:24] = 1, 1, 1
    assert features_of(loaded, "", photo).shape == (16,)  # the embedding
    assert features_of(loaded, "transformer.1", photo).shape == (24, 4, 4)  # patch tokens
    objective = toward_image(loaded, "transformer.1", photo)
    assert objective.name == "transformer.1~image"
    [bound] = fs.objectives.bind_objectives([objective], model, (3, 32, 32))
    with fs.Probe(model, ["transformer.1"]) as probe, torch.no_grad():
        mirrored = bound(probe.run(photo.flip(2)[None])).item()  # the photo, mirrored
    result = fs.render(model, objective, input_shape=(3, 32, 32), steps=60, seed=0,
                       preset="featscope", param="pixel", transforms="none", lr=0.1)
    assert result.final[0] > 0.95 > mirrored + 0.3


def test_a_text_tower_renders_along_an_embedding_direction(tmp_path):
    vector = tmp_path / "dir.npy"
    np.save(vector, np.random.default_rng(0).standard_normal(8).astype(np.float32))
    path = _write_models(tmp_path)
    run = CliRunner().invoke(app, [
        "render", "output", "--model", f"{path}:text", "--embedding", "token_embedding",
        "--seq-len", "4", "--direction", str(vector), "--steps", "40", "--quiet",
        "--device", "cpu", "--out", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    [row] = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert row["target"] == "output~dir" and row["objective"] > row["objective_initial"]
    assert "--direction" in row["reproduce"]


# -- the command line ----------------------------------------------------------------------

def _write_models(folder):
    path = folder / "nets.py"
    path.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent.parent)!r})\n"
        "from tests import transformer_models as tm\n"
        "def vit():\n    return tm.tiny_timm_vit(img_size=32)\n"
        "def ambiguous():\n    return tm.Ambiguous()\n"
        "def tower():\n    return tm.SequenceFirstImageTower()\n"
        "def text():\n    return tm.SequenceFirstTextTower()\n"
        "def known():\n    return tm.KnownFilterViT()\n")
    return path


def test_cli_layers_shows_token_layouts(tmp_path):
    path = _write_models(tmp_path)
    run = CliRunner().invoke(app, ["layers", "--model", f"{path}:vit", "--input-shape",
                                   "3x32x32"])
    assert run.exit_code == 0, run.output
    row = next(line for line in run.output.splitlines() if "│ blocks.1.mlp.act " in line)
    assert "GELU (MLP hidden)" in row and "tokens 3+2×2, 768 features" in row
    assert "MLP hidden layers" in run.output
    listing = CliRunner().invoke(app, ["layers", "--model", f"{path}:vit", "--input-shape",
                                       "3x32x32", "--json"])
    layers = {r["name"]: r for r in json.loads(listing.output)["layers"]}
    assert layers["blocks.1"]["features"] == 192 and layers["blocks.1"]["layout"] == "BTC"
    assert layers["blocks.1"]["prefix_tokens"] == 3 and layers["blocks.1"]["grid"] == [2, 2]


def test_cli_ambiguous_layout_is_a_clear_error(tmp_path):
    path = _write_models(tmp_path)
    listing = CliRunner().invoke(app, ["layers", "--model", f"{path}:ambiguous",
                                       "--input-shape", "3x16x16"])
    assert listing.exit_code == 0 and "? (see below)" in listing.output
    assert "reads two ways" in listing.output
    out = str(tmp_path / "out")
    run = CliRunner().invoke(app, ["render", "tokens:3", "--model", f"{path}:ambiguous",
                                   "--input-shape", "3x16x16", "--steps", "2", "--out", out])
    assert isinstance(run.exception, FeatscopeError)
    message = str(run.exception)
    assert "(B, 16, 16) reads two ways" in message and "--layout BTC" in message
    wrong = CliRunner().invoke(app, ["render", "tokens:3", "--model", f"{path}:ambiguous",
                                     "--input-shape", "3x16x16", "--layout", "BHWC", "--steps",
                                     "2", "--out", out])
    assert "layout BHWC needs a 4-D output" in str(wrong.exception)
    declared = CliRunner().invoke(app, [
        "render", "tokens:3", "tokens:3@cls", "--model", f"{path}:ambiguous", "--input-shape",
        "3x16x16", "--layout", "BTC", "--steps", "4", "--quiet", "--out", out])
    assert isinstance(declared.exception, FeatscopeError)
    assert "has no class token" in str(declared.exception)
    ok = CliRunner().invoke(app, ["render", "tokens:3", "--model", f"{path}:ambiguous",
                                  "--input-shape", "3x16x16", "--layout", "BTC", "--steps", "4",
                                  "--quiet", "--out", out])
    assert ok.exit_code == 0, ok.output
    [row] = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert "--layout BTC" in row["reproduce"]


def test_cli_toward_image(tmp_path):
    from PIL import Image
    path = _write_models(tmp_path)
    photo = tmp_path / "photo.png"
    pixels = np.zeros((40, 40, 3), dtype=np.uint8)
    pixels[:, :20, 0], pixels[:, 20:, 2], pixels[10:20, 10:30, 1] = 255, 255, 255
    Image.fromarray(pixels).save(photo)
    run = CliRunner().invoke(app, [
        "render", "output", "transformer.1", "--model", f"{path}:tower", "--input-shape",
        "3x32x32", "--toward-image", str(photo), "--steps", "30", "--quiet", "--device", "cpu",
        "--out", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert [r["target"] for r in rows] == ["output~photo", "transformer.1~photo"]
    assert rows[1]["objective"] > rows[1]["objective_initial"], rows
    assert "--toward-image" in rows[1]["reproduce"]


def test_exported_vit_lists_tokens_and_renders(tmp_path):
    model = tm.KnownFilterViT().eval()
    path = tmp_path / "vit.pt2"
    program = torch.export.export(model, (torch.rand(2, 3, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(path))
    listing = CliRunner().invoke(app, ["layers", "--model", str(path), "--json"])
    assert listing.exit_code == 0, listing.output
    layers = {r["name"]: r for r in json.loads(listing.output)["layers"]}
    # The program keeps no module types nor num_prefix_tokens: 19 tokens of a 32 px image
    # are told apart as 3 + 4×4 from their count alone.
    assert layers["norm"]["layout"] == "BTC" and layers["norm"]["features"] == 12
    assert layers["norm"]["prefix_tokens"] == 3 and layers["norm"]["grid"] == [4, 4]
    run = CliRunner().invoke(app, ["render", "norm:0", "fc1:5", "--model", str(path),
                                   "--steps", "20", "--quiet", "--device", "cpu",
                                   "--out", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert all(r["objective"] > r["objective_initial"] for r in rows)
