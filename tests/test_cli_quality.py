"""Command line: MACO, accentuation, copies, and `featscope evaluate`."""

import json

import numpy as np
import pytest
from PIL import Image

from .test_cli import assert_clear_error, featscope

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee"):
        Image.fromarray(np.asarray(getattr(skimage_data, name)())).save(folder / f"{name}.png")
    return folder


def test_maco_render_then_evaluate(tmp_path, photos):
    run = featscope("render", "logit:espresso", "_blocks.8:5", "--preset", "maco", "--steps", "3",
                    "--size", "64", "--crops", "2", "--spectrum-from", str(photos), "--quiet",
                    "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    for row in summary["results"]:
        alpha = Image.open(tmp_path / row["transparency"])
        assert alpha.mode == "RGBA" and alpha.size == (64, 64)
        assert row["never_activated"] is False
    run = featscope("evaluate", str(tmp_path), "--natural", str(photos), "--judge",
                    "efficientnet_lite1", "--draws", "2")
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    espresso, channel = summary["results"]
    assert set(espresso["metrics"]) == {"robustness", "activation_ratio", "top1_full",
                                        "top1_64px", "top1_48px", "top5_full", "top5_64px",
                                        "top5_48px"}
    assert channel["metrics"]["top1_full"] is None  # not a class target
    assert 0 <= summary["metrics"]["top5_48px"] <= 1


def test_accentuation_and_copies(tmp_path, photos):
    run = featscope("render", "logit:goldfinch", "--from-image", str(photos / "chelsea.png"),
                    "--copies", "2", "--steps", "3", "--size", "64", "--quiet",
                    "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    # Each copy is its own unit, with its own files.
    assert [r["target"] for r in summary["results"]] == ["logit:goldfinch#0", "logit:goldfinch#1"]
    assert summary["settings"]["closeness"] > 0 and summary["settings"]["diversity"] > 0
    first, second = (np.asarray(Image.open(tmp_path / r["image"]), dtype=float)
                     for r in summary["results"])
    assert first.shape == (64, 64, 3) and np.abs(first - second).mean() > 0


def test_quality_options_report_bad_input(tmp_path):
    assert_clear_error(featscope("render", "logit:1", "--param", "wavelet", "--out", str(tmp_path)),
                       "unknown --param", "maco")
    assert_clear_error(featscope("render", "logit:1", "--from-image", str(tmp_path / "no.png"),
                                 "--out", str(tmp_path)), "does not exist")
    assert_clear_error(featscope("render", "logit:1", "--param", "maco", "--spectrum-from",
                                 str(tmp_path), "--out", str(tmp_path)), "holds no images")
    assert_clear_error(featscope("evaluate", str(tmp_path)), "no summary.json")


def test_the_faithful_finish_and_the_batch_norm_prior_are_options(tmp_path):
    run = featscope("render", "_blocks.8:5", "--polish", "0", "--bn-prior", "0.01", "--steps",
                    "3", "--size", "64", "--quiet", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["polish"] == 0 and summary["settings"]["bn_prior"] == 0.01
    (row,) = summary["results"]
    assert "--polish 0.0" in row["reproduce"] and "--bn-prior 0.01" in row["reproduce"]
    # The row reports the activation under the search's transforms beside the clean one.
    assert row["objective_transformed"] is not None
    assert_clear_error(featscope("render", "_blocks.8:5", "--polish", "1.5",
                                 "--out", str(tmp_path / "bad")), "polish must be in [0, 1)")
    assert_clear_error(featscope("render", "energy:0", "--model", "tests.zoo:FrequencyDetector",
                                 "--input-shape", "1x128", "--bn-prior", "0.1", "--steps", "2",
                                 "--out", str(tmp_path / "no-norms")),
                       "needs batch norms", "valid here: 0")
