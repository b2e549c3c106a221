"""The committed default checkpoint (``agents/drivejepa/model.pt``, made by ``make
drivejepa-model``; ``agents/drivejepa/MODEL_CARD.md``): it loads under the agent's default
camera and format, stays within the size budget, records how it was made, and the registered
``drivejepa`` agent drives a short built-in route end to end from it (no ``--agent-config``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from drivejepa.camera import CameraSetup
from drivejepa.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint
from harness.cli.main import run as cli_run

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "agents" / "drivejepa" / "model.pt"
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
MAX_BYTES = 25 * 2**20  # the budget for a committed checkpoint


def test_default_checkpoint_loads_and_records_its_recipe() -> None:
    assert DEFAULT.is_file(), "agents/drivejepa/model.pt is missing: `make drivejepa-model`"
    assert DEFAULT.stat().st_size <= MAX_BYTES
    ckpt = load_checkpoint(DEFAULT, CameraSetup())
    assert ckpt.camera == CameraSetup()
    raw = torch.load(DEFAULT, map_location="cpu", weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == CHECKPOINT_VERSION
    train = ckpt.train
    # the last round of `harness train aggregate`, fine-tuned from the planner trained on the data
    assert train["aggregate_round"] >= 1 and train["mtd"] is True and train["epochs"] >= 1
    parent = train["parent_train"]
    while "parent_train" in parent:
        parent = parent["parent_train"]
    assert parent["seed"] == 0 and parent["encoder"].endswith("encoder.pt")


def test_default_agent_drives_a_builtin_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = cli_run(["eval", "--agent", "drivejepa", "--routes", str(ROUTES), "--routes-subset",
                    "0", "--out", str(out), "--traffic", "0", "--pedestrians", "0"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (rec,) = json.loads((out / "results.json").read_text())["_checkpoint"]["records"]
    assert rec["town_name"] == "Harness01"
    assert rec["status"] == "Completed", rec["status"]
    assert rec["scores"]["score_route"] == 100.0
    assert not rec["infractions"]["collisions_vehicle"] and not rec["infractions"]["red_light"]
