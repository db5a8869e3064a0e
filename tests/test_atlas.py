"""`featscope atlas` on a local Ray instance with 2 worker processes: the same units and
images as a single process, a worker killed in the middle of a batch, a driver interrupted
and resumed, and the single-process path without Ray. The tests start Ray themselves
(2 CPUs) and shut it down after; renders are tiny (24 steps, 64 px, 16 units)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from typer.testing import CliRunner

import featscope.atlas.cluster as cluster
import featscope.atlas.run as atlas_run
from featscope.atlas.progress import WRITE_EVERY
from featscope.cli import app
from featscope.store import ResultStore, readable

ray = pytest.importorskip("ray")  # the atlas extra; CI installs it with the test extra

REPO = Path(__file__).resolve().parent.parent
LAYER = "_blocks.0"  # 16 units
UNITS = [f"{LAYER}:{k}" for k in range(16)]
# Batches of 4 units take a second or two on one core: long enough to kill a worker in one.
TINY = ["--layers", LAYER, "--steps", "24", "--size", "64", "--seed", "0", "--batch-size", "4",
        "--device", "cpu", "--quiet"]


def atlas(*args: str):
    result = CliRunner().invoke(app, ["atlas", *TINY, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def rows(out: Path) -> dict[str, dict]:
    return {r["target"]: r for r in json.loads((out / "summary.json").read_text())["results"]}


def store_of(out: Path, root: str | Path | None = None) -> ResultStore:
    """The results store the run in ``out`` wrote (``root``: its --store)."""
    key = json.loads((out / "summary.json").read_text())["settings"]["settings_key"]
    store = ResultStore(root or out, {}, None)
    store.key, store.prefix = key, f"cache/{key}"
    return store


def psnr(a: Path, b: Path) -> float:
    x, y = (np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) for p in (a, b))
    mse = ((x - y) ** 2).mean()
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def assert_same_units(out: Path, reference: Path) -> None:
    """The architecture's batch-independence tolerance: PSNR >= 35 dB, objective within 1%."""
    ours, theirs = rows(out), rows(reference)
    assert sorted(ours) == sorted(theirs) == sorted(UNITS)
    for target, row in ours.items():
        other = theirs[target]
        assert row["seed"] == other["seed"]
        assert psnr(out / row["image"], reference / other["image"]) >= 35, target
        assert row["objective"] == pytest.approx(other["objective"], rel=0.01), target


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The single-process renders here run on one torch thread, as each Ray worker does
    (a process with a thread per core crawls on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=cluster.OBJECT_STORE_BYTES)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "rocket", "astronaut", "camera"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory, images) -> Path:
    """The same units rendered by `featscope gallery` in one process."""
    out = tmp_path_factory.mktemp("gallery")
    args = ["gallery", "--all", *TINY, "--images", str(images), "--top-k", "2", "--out", str(out)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_two_ray_workers_give_the_single_process_atlas(ray_instance, reference, images,
                                                        tmp_path, monkeypatch):
    monkeypatch.setattr(atlas_run, "EXAMPLES_SHARD", 2)  # 5 photos: 3 example tasks, merged
    out, store = tmp_path / "atlas", (tmp_path / "shared").as_uri()  # the store via fsspec
    atlas("--workers", "2", "--images", str(images), "--top-k", "2", "--store", store,
          "--out", str(out))
    assert_same_units(out, reference)
    ours, theirs = rows(out), rows(reference)
    for target in UNITS:
        assert [e["path"] for e in ours[target]["examples"]] == \
            [e["path"] for e in theirs[target]["examples"]]
    progress = json.loads((out / "progress.json").read_text())
    assert progress["state"] == "finished" and progress["examples"] == {"shards": 3, "done": 3}
    assert (progress["done"], progress["rendered"], progress["requeued"]) == (16, 16, 0)
    assert len(progress["workers"]) == 2 and {w["threads"] for w in progress["workers"]} == {1}
    assert sum(w["units"] for w in progress["workers"]) == 16
    # Each unit was stored once, at the URL, and copied into --out, where the gallery is.
    assert store_of(out, store).puts(UNITS) == {t: 1 for t in UNITS}
    assert all(store_of(out).get(t) is not None for t in UNITS)
    index = (out / "index.html").read_text()
    assert "finished: 16 of 16 units" in index and 'http-equiv="refresh"' not in index
    assert len(list((out / "thumbs").rglob("*.png"))) == 16
    # The workers measured each unit's robustness as `featscope evaluate` measures the saved
    # image; the summary has their mean, each unit page shows it.
    measured = {t: row["metrics"]["robustness"] for t, row in ours.items()}
    assert all(isinstance(v, float) for v in measured.values()), measured
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["robustness"] == pytest.approx(np.mean(list(measured.values())),
                                                             abs=1e-3)
    assert summary["metrics_settings"]["draws"] == 8
    pages = list((out / "units").rglob("*.html"))
    assert len(pages) == 16 and all("robustness" in p.read_text() for p in pages)
    result = CliRunner().invoke(app, ["evaluate", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    evaluated = {t: row["metrics"]["robustness"] for t, row in rows(out).items()}
    assert evaluated == pytest.approx(measured, abs=1e-4)


def test_a_worker_killed_in_a_batch_loses_nothing(ray_instance, reference, tmp_path):
    out = tmp_path / "atlas"
    killed: list[dict] = []

    def kill_a_busy_worker() -> None:
        deadline = time.time() + 400  # Ray and two workers start slowly on a busy machine
        while time.time() < deadline and not killed:
            try:
                progress = json.loads((out / "progress.json").read_text())
            except (OSError, ValueError):
                time.sleep(0.05)
                continue
            for worker in progress["workers"]:
                if worker["state"] == "busy" and time.time() - worker["since"] > 0.2:
                    os.kill(worker["pid"], signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    atlas("--workers", "2", "--out", str(out))
    killer.join()
    assert killed, "no worker was seen busy"
    progress = json.loads((out / "progress.json").read_text())
    assert progress["workers_lost"] == 1 and progress["requeued"] == 1
    assert progress["done"] == progress["rendered"] == 16 and progress["failed"] == 0
    assert_stored_once(store_of(out))
    assert_same_units(out, reference)


def assert_stored_once(store: ResultStore) -> None:
    """Every unit was written, and none over a record already there (stored twice). A worker
    killed between its journal entry and its record adds an entry, so counts may exceed 1."""
    assert set(store.puts(UNITS)) == set(UNITS)
    assert not store.puts(UNITS, replacing=True), "units stored twice"


def _hold_workers(out: Path, paused: list[int]) -> bool:
    """SIGSTOP to each worker that ``out``/progress.json names and ``paused`` does not hold yet
    (then added to it); whether any worker is held."""
    try:
        progress = json.loads((out / "progress.json").read_text())
        pids = [w["pid"] for w in progress["workers"] if w.get("pid")]
    except (OSError, ValueError, KeyError):
        pids = []
    for pid in pids:
        if pid not in paused:
            try:
                os.kill(pid, signal.SIGSTOP)
                paused.append(pid)
            except ProcessLookupError:
                pass
    return bool(paused)


def _resume(pids: list[int]) -> None:
    """SIGCONT to the processes ``pids`` that still run (then forgets them)."""
    while pids:
        try:
            os.kill(pids.pop(), signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_an_interrupted_driver_leaves_whole_units_and_resumes(ray_instance, reference, tmp_path):
    out = tmp_path / "atlas"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen(
        [sys.executable, "-m", "featscope", "atlas", *TINY, "--cluster", ray_instance,
         "--workers", "2", "--out", str(out)], env=env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C as in a terminal: a test run started in the background (a shell without job
        # control) ignores SIGINT, and its children would inherit that and run on.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    paused: list[int] = []
    try:
        # Once 4 units are in the store (each record is written as its unit finishes;
        # progress.json may lag a second), every worker is held where it is until Ctrl-C has
        # reached the driver: the run cannot finish first, however fast or busy the machine.
        # A worker that comes up later (on a fast machine, one worker may render the first
        # batches alone) is held as soon as progress.json names it.
        deadline = time.time() + 400  # Ray and two workers start slowly on a busy machine
        done = 0
        while time.time() < deadline and driver.poll() is None:
            done = len(list(out.glob("cache/*/*.result.json")))
            if done >= 4 and _hold_workers(out, paused):
                done = len(list(out.glob("cache/*/*.result.json")))
                break
            time.sleep(0.02)
        assert 4 <= done < 16, f"the run did not stop half-way: {done} units done"
        # What the driver has received of them (a batch whose worker was held after storing
        # its units, before answering, never reaches it): the summary must list exactly that.
        received, until = 0, time.time() + 3 * WRITE_EVERY
        while time.time() < until and received < 4:
            time.sleep(0.1)
            _hold_workers(out, paused)
            received = json.loads((out / "progress.json").read_text())["done"]
        driver.send_signal(signal.SIGINT)  # Ctrl-C
        for _ in range(20):  # the driver sees it (it waits at most TICK between looks) ...
            _hold_workers(out, paused)
            time.sleep(0.1)
        _resume(paused)  # ... then the workers go on, to be stopped by the driver
        _, stderr = driver.communicate(timeout=60)
    finally:
        _resume(paused)
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert json.loads((out / "progress.json").read_text())["state"] == "interrupted"
    # The store holds only whole units, and the summary lists only stored ones.
    store = store_of(out)
    records = list(Path(out / store.prefix).glob("*.result.json"))
    stored = [store.get(json.loads(r.read_text())["label"]) for r in records]
    assert all(stored) and len(stored) >= done
    kept = {r: r.read_bytes() for r in records}
    listed = rows(out)
    assert received <= len(listed) <= len(stored)
    assert all(readable(out / row["image"]) for row in listed.values())

    atlas("--workers", "2", "--out", str(out))  # the same command again goes on
    progress = json.loads((out / "progress.json").read_text())
    assert (progress["resumed"], progress["done"]) == (len(stored), 16)
    assert {r: r.read_bytes() for r in kept} == kept  # the stored units were not rendered again
    assert_stored_once(store)
    assert_same_units(out, reference)


def test_without_ray_the_atlas_runs_in_this_process(reference, tmp_path, monkeypatch):
    out = tmp_path / "atlas"
    shutil.copytree(reference, out)
    store = store_of(out)
    for target in UNITS[:2]:  # two units to render again, the rest resumed
        (out / store.prefix / f"{store.stem(target)}.result.json").unlink()
    monkeypatch.setattr(cluster, "ray_installed", lambda: False)
    monkeypatch.setattr(atlas_run, "ray_installed", lambda: False)
    result = CliRunner().invoke(app, ["atlas", *TINY[:-1], "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Ray is not installed" in result.output and "featscope[atlas]" in result.output
    assert "resumed 14 of 16 units" in result.output
    progress = json.loads((out / "progress.json").read_text())
    assert progress["rendered"] == 2 and progress["workers"][0]["pid"] == os.getpid()
    assert_same_units(out, reference)
    # A cluster needs Ray: said in one line.
    refused = CliRunner().invoke(app, ["atlas", *TINY, "--cluster", "auto", "--out",
                                       str(out)])
    assert refused.exit_code != 0 and "needs Ray" in str(refused.exception)


@pytest.mark.parametrize("args, fragment", [
    (["--all-layers"], "give --layers or --all-layers, not both"),
    (["--cluster", "somewhere"], "bad --cluster 'somewhere'; valid: local"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--out", "s3://bucket/atlas"], "must be a local folder"),
])
def test_bad_atlas_options_are_clear_errors(args, fragment, tmp_path):
    result = CliRunner().invoke(app, ["atlas", *TINY, "--out", str(tmp_path), *args])
    assert result.exit_code != 0 and fragment in str(result.exception)
