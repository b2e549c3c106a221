"""Service parity on the default vocabulary: a dataset generated with the shipped 8,192-entry
vocabulary (every entry scored per scene) and a service started with its defaults; each
exported scene, sent to POST /v1/teachers over HTTP, gets exactly the dataset's teachers, scores
and pool. A request may name a vocabulary by registered id only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from teachers.dataset import load_dataset, poses_array
from teachers.generate import GenerateConfig, generate
from teachers.selection import SelectionConfig
from teachers.service.app import AppConfig
from teachers.service.engine import EngineConfig
from teachers.service.export import export_scene
from teachers.service.limits import LimitConfig
from teachers.vocabulary import DEFAULT_VOCABULARY_ID, default_vocabulary
from tests.test_service_http import LiveServer

SCORES = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "c", "hc", "ec", "pdms", "epdms")


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three scenes on Harness01 scored with the default vocabulary (no prefilter)."""
    out = tmp_path_factory.mktemp("parity_teachers")
    cfg = GenerateConfig(
        town="Harness01", out=out, max_scenes=3, max_routes=1, every_s=1.0,
        agent="route_follower", generated_route_m=120.0, selection=SelectionConfig(k=4),
        command_line=("test",),
    )  # fmt: skip
    generate(cfg)
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    config = AppConfig(
        engine=EngineConfig(preload=("Harness01",)),  # the defaults: vocabulary included
        limits=LimitConfig(concurrency=1, queue=2, timeout_s=120.0, max_body_bytes=4_000_000),
    )
    with LiveServer(config) as live:
        yield live


def test_dataset_scores_every_entry(dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    v = ds.manifest["vocabulary"]
    assert v["id"] == DEFAULT_VOCABULARY_ID and v["sha256"] == default_vocabulary().sha256
    assert (ds.scenes.n_vocabulary == 8192).all()
    assert ds.manifest["candidate_counts"]["vocabulary_size"] == 8192


def test_exported_scene_gives_the_dataset_teachers_and_pool(
    server: LiveServer, dataset_dir: Path
) -> None:
    ds = load_dataset(dataset_dir)
    assert (ds.scenes.vocab_pool.map(len) > 0).any()
    for sc in ds.scenes.itertuples():
        body = json.loads(json.dumps(export_scene(dataset_dir, sc.scene_id)))
        assert body["options"]["vocabulary"] == DEFAULT_VOCABULARY_ID
        assert body["options"]["profile"] == ds.manifest["scoring_profile"] == "navsim"
        r = httpx.post(server.url + "/v1/teachers", json=body, timeout=120)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["vocabulary"] == {"id": DEFAULT_VOCABULARY_ID, "size": 8192,
                                     "sha256": default_vocabulary().sha256}  # fmt: skip
        assert got["pool"] == [int(v) for v in sc.vocab_pool]
        rows = ds.pool[ds.pool.scene_id == sc.scene_id]  # the one stored pool, extras included
        assert got["pool"] == sorted(int(v) for v in rows.vocab_index if v >= 0)
        assert got["counts"]["pool"] == sc.n_pool == len(rows)
        assert got["counts"]["modes_kept"] == sc.n_modes_kept
        assert got["counts"]["vocabulary"] == sc.n_vocabulary == 8192
        assert got["counts"]["candidates"] == sc.n_candidates
        assert got["counts"]["passed"] == sc.n_passed
        want = ds.teachers[ds.teachers.scene_id == sc.scene_id].sort_values("rank")
        poses = np.asarray([t["poses"] for t in got["teachers"]]).reshape(-1, 40, 3)
        assert np.array_equal(poses, poses_array(want.poses))
        assert [t["source"] for t in got["teachers"]] == list(want.source)
        for t, w in zip(got["teachers"], want.itertuples(), strict=True):
            assert [t["scores"][n] for n in SCORES] == [getattr(w, n) for n in SCORES]


def test_vocabulary_by_registered_id_only(server: LiveServer, dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    body = export_scene(dataset_dir, str(ds.scenes.scene_id.iloc[0]))
    for bad, field in (("/tmp/vocabulary.npz", "vocabulary"), ("no-such-id", "vocabulary")):
        b = {**body, "options": {**body["options"], "vocabulary": bad}}
        r = httpx.post(server.url + "/v1/teachers", json=b, timeout=60)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == field
    b = {**body, "options": {**body["options"], "vocabulary_sha256": "0" * 64}}
    r = httpx.post(server.url + "/v1/teachers", json=b, timeout=60)
    assert r.status_code == 422 and "hash" in r.text


def test_profile_by_registered_name_only(server: LiveServer, dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    body = export_scene(dataset_dir, str(ds.scenes.scene_id.iloc[0]))
    for bad in ("/tmp/profile.py", "NAVSIM", "", "navsim2", 1):
        b = {**body, "options": {**body["options"], "profile": bad}}
        r = httpx.post(server.url + "/v1/teachers", json=b, timeout=60)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == "profile"
