"""`harness eval` through the installed entry point: results.json in the leaderboard format,
the printed tables, resume, and exit status 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(sys.executable).with_name("harness")
REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
FAST = ("--blocked-time", "2", "--traffic", "3", "--pedestrians", "0")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HARNESS), "eval", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
        check=False,
    )  # fmt: skip


def test_do_nothing_writes_leaderboard_results(tmp_path: Path) -> None:
    res = _run("--agent", "do_nothing", "--routes", str(ROUTES), "--routes-subset", "0",
               "--out", "tmp", *FAST, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "tmp" / "results.json").read_text())
    assert set(data) == {"_checkpoint", "entry_status", "eligible", "sensors", "values", "labels"}
    ckpt = data["_checkpoint"]
    assert set(ckpt) == {"global_record", "progress", "records"}
    assert ckpt["progress"] == [1, 1]
    (rec,) = ckpt["records"]
    assert rec["route_id"] == "RouteScenario_0_rep0" and rec["town_name"] == "Harness01"
    assert rec["status"] == "Failed - Agent got blocked"
    assert rec["scores"]["score_composed"] == 0.0
    assert data["entry_status"] == "Finished" and data["eligible"] is True
    assert len(data["values"]) == len(data["labels"]) == 15
    out = " ".join(res.stdout.split())
    assert "Failed - Agent got blocked" in out and "Global record" in out
    assert (tmp_path / "tmp" / "steps" / "RouteScenario_0_rep0.parquet").is_file()

    again = _run("--agent", "do_nothing", "--routes", str(ROUTES), "--routes-subset", "0",
                 "--out", "tmp", *FAST, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "tmp" / "results.json").read_text()) == data  # resumed: no rerun


def test_bad_agent_path_exits_2(tmp_path: Path) -> None:
    res = _run("--agent", str(tmp_path / "missing_agent.py"), "--routes", str(ROUTES),
               "--out", "tmp", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2
    assert "neither a registered name" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr


def _main_in_process(
    args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """`harness eval ARGS` through the CLI's error boundary (main) in this process."""
    from harness.cli.main import main

    monkeypatch.setattr(sys, "argv", ["harness", "eval", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    code = exc.value.code
    return int(code) if isinstance(code, int) else 1, " ".join(capsys.readouterr().err.split())


def test_bad_options_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    base = ("--agent", "do_nothing", "--out", "tmp")
    for extra, message in (
        (("--routes", str(ROUTES), "--routes-subset", "0,9"), "outside the file's route indices"),
        (("--routes", str(ROUTES), "--penalties", "3.0"), "--penalties must be one of"),
        (("--routes", str(ROUTES), "--mode", "carla"), "--mode must be one of"),
        (("--routes", str(tmp_path / "none.xml")), "does not exist"),
    ):
        code, err = _main_in_process((*base, *extra), monkeypatch, capsys)
        assert code == 2, (extra, err)
        assert message in err, err
    assert not (tmp_path / "tmp" / "results.json").exists()


def test_help_lists_the_options(tmp_path: Path) -> None:
    res = _run("--help", cwd=tmp_path)
    assert res.returncode == 0
    for opt in ("--agent", "--routes-subset", "--resume", "--penalties", "--mode", "--record"):
        assert opt in res.stdout


def test_penalty_table_follows_the_mode_unless_given(tmp_path: Path) -> None:
    """Bench2Drive's statistics manager marks the min-speed penalty 'unused'; the leaderboard's
    2.0 table applies it. --penalties overrides either."""
    from harness.cli.eval_cmd import build_config

    def table(mode: str, penalties: str | None) -> str:
        return build_config(
            agent="do_nothing", routes=ROUTES, subset=None, out=tmp_path, agent_config="",
            resume=False, rerun_crashed=False, seed=0, traffic=0, pedestrians=0, record=False,
            penalties=penalties, mode=mode, blocked_time_s=None,
        ).penalties.name  # fmt: skip

    assert table("bench2drive", None) == "bench2drive"
    assert table("leaderboard", None) == "leaderboard-2.0"
    assert table("bench2drive", "2.0") == "leaderboard-2.0"
