"""`harness teachers export`: Drive-JEPA's files (global vocabulary .npy in the rear-axle frame,
one int64 index file per scene), the NumPy and Parquet layouts, their round trip to the
dataset's vocabulary and pools, and the frame conversion against hand-computed poses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli.main import _register, run
from harness.cli.main import app as cli_app
from harness.dynamics.vehicle import LINCOLN_MKZ_2017
from teachers.dataset import load_dataset
from teachers.export import (
    DRIVEJEPA_INDEX_DIR,
    centre_to_rear_axle,
    export_dataset,
    read_export,
    rear_axle_to_centre,
)
from teachers.generate import GenerateConfig, generate
from teachers.selection import SelectionConfig
from teachers.vocabulary import load_vocabulary


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset on Harness01 with a 32-entry vocabulary of its own drive."""
    out = tmp_path_factory.mktemp("export_teachers")
    cfg = GenerateConfig(
        town="Harness01", out=out, max_scenes=3, max_routes=1, every_s=2.0, vocabulary_size=32,
        vocabulary_id=None, agent="route_follower", generated_route_m=120.0,
        selection=SelectionConfig(k=3), command_line=("test",),
    )  # fmt: skip
    generate(cfg)
    return out


def test_frame_conversion_by_hand() -> None:
    d = LINCOLN_MKZ_2017.rear_axle_to_center_m
    # straight ahead: the rear axle moves as the centre does, x unchanged
    straight = np.array([[5.0, 0.0, 0.0]])
    assert np.allclose(centre_to_rear_axle(straight, d), [[5.0, 0.0, 0.0]])
    # centre at (10, -4) (4 m to the left), heading 90 deg left (yaw -pi/2 here): the rear axle
    # is d behind the centre along the heading, i.e. at (10, -4 + d); in the rear-axle frame
    # at t = 0 (origin d behind the start centre), y left: (10 + d, 4 - d), yaw +pi/2
    turned = np.array([[10.0, -4.0, -np.pi / 2]])
    assert np.allclose(centre_to_rear_axle(turned, d), [[10.0 + d, 4.0 - d, np.pi / 2]])
    rng = np.random.default_rng(0)
    t = rng.uniform(-20, 20, (5, 40, 3))
    t[..., 2] = rng.uniform(-3, 3, (5, 40))
    assert np.allclose(rear_axle_to_centre(centre_to_rear_axle(t, d), d), t)


def test_drivejepa_files(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dj"
    info = export_dataset(dataset_dir, "drivejepa", out)
    ds = load_dataset(dataset_dir)
    vocab = load_vocabulary(dataset_dir / "vocabulary.npz")
    n = vocab.size
    assert info["size"] == n == 32 and info["scenes"] == len(ds.scenes)
    anchors = np.load(out / f"{n}.npy")
    assert anchors.dtype == np.float32 and anchors.shape == (n, 40, 3)
    d = LINCOLN_MKZ_2017.rear_axle_to_center_m
    assert np.allclose(anchors, centre_to_rear_axle(vocab.trajectories, d), atol=1e-4)
    files = sorted((out / DRIVEJEPA_INDEX_DIR.format(n=n)).glob("*.npy"))
    assert [f.stem for f in files] == sorted(ds.scenes.scene_id)
    for sc in ds.scenes.itertuples():
        idx = np.load(out / DRIVEJEPA_INDEX_DIR.format(n=n) / f"{sc.scene_id}.npy")
        assert idx.dtype == np.int64 and idx.ndim == 1
        assert list(idx) == list(sc.vocab_pool)
        assert len(idx) <= 256 and (idx.size == 0 or (idx.min() >= 0 and idx.max() < n))
    assert (ds.scenes.vocab_pool.map(len) > 0).any()  # the test exercises non-empty pools


@pytest.mark.parametrize("fmt", ["drivejepa", "numpy", "parquet"])
def test_round_trip(dataset_dir: Path, tmp_path: Path, fmt: str) -> None:
    export_dataset(dataset_dir, fmt, tmp_path / fmt)
    back = read_export(tmp_path / fmt)
    ds = load_dataset(dataset_dir)
    vocab = load_vocabulary(dataset_dir / "vocabulary.npz")
    assert np.allclose(back.vocabulary, vocab.trajectories, atol=1e-4)
    assert list(back.pools) == list(ds.scenes.scene_id) or set(back.pools) == set(ds.scenes.scene_id)
    for sc in ds.scenes.itertuples():
        assert back.pools[sc.scene_id].tolist() == list(sc.vocab_pool)


def test_pool_is_part_of_the_passing_set(dataset_dir: Path) -> None:
    """A pool holds passing vocabulary candidates only: never more than the scene's passing
    count or its vocabulary candidates; the manifest names the vocabulary's hash."""
    ds = load_dataset(dataset_dir)
    for sc in ds.scenes.itertuples():
        assert len(sc.vocab_pool) <= min(sc.n_passed, sc.n_vocabulary)
    assert ds.manifest["vocabulary"]["sha256"] == load_vocabulary(
        dataset_dir / "vocabulary.npz"
    ).sha256


def test_cli_export_and_bad_format(
    dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _register()
    runner = CliRunner()
    r = runner.invoke(cli_app, ["teachers", "export", str(dataset_dir), str(tmp_path / "o"),
                                "--format", "numpy"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["format"] == "numpy"
    capsys.readouterr()
    status = run(["teachers", "export", str(dataset_dir), str(tmp_path / "p"), "--format", "csv"])
    err = capsys.readouterr().err
    assert status == 2 and "drivejepa" in err and len(err.strip().splitlines()) == 1
