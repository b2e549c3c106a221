"""`harness doctor` on a machine without a CARLA server: every check reports, the missing server
is a failure with what to do (exit 1), a port that accepts connections but does not speak the
CARLA RPC is told apart from a closed one, the Traffic Manager port in use is flagged, and the
compatibility-layer check finds packages without importing them."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from harness.cli.main import run
from harness.sim.carla_checks import Status, compat_checks, server_checks, traffic_manager_check
from harness.sim.carla_server import free_port


def test_no_server_fails_with_a_fix_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port("127.0.0.1", start=24000, stop=25000)
    rc = run(["doctor", "--json", "--carla-host", "127.0.0.1", "--carla-port", str(port),
              "--carla-tm-port", str(port + 10)])  # fmt: skip
    assert rc == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["carla client"]["status"] == "ok" and "0.9.16" in checks["carla client"]["detail"]
    assert checks["server reachable"]["status"] == "fail"
    assert f"-carla-rpc-port={port}" in checks["server reachable"]["fix"]
    assert checks["server version"]["status"] == checks["server towns"]["status"] == "skip"
    assert {"traffic manager port", "CARLA_ROOT", "GPU", "import leaderboard", "import srunner",
            "import agents"} <= set(checks)  # fmt: skip


def test_a_port_that_does_not_speak_carla_is_told_apart() -> None:
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(4)
        found = server_checks("127.0.0.1", mute.getsockname()[1], 1.0)
    assert found[0].status is Status.FAIL and "does not answer the CARLA RPC" in found[0].detail


def test_traffic_manager_port_in_use_is_flagged() -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen(1)
        check = traffic_manager_check(busy.getsockname()[1])
    assert check.status is Status.WARN and "--carla-tm-port" in check.fix


def test_compat_check_finds_packages_without_importing_them(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    pkg = tmp_path / "leaderboard"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = {c.name: c for c in compat_checks(tmp_path)}
    assert found["import leaderboard"].status is Status.OK
    assert "this project's compatibility layer" in found["import leaderboard"].detail
    assert "leaderboard" not in sys.modules or "imported" not in repr(sys.modules.get("leaderboard"))
    other = {c.name: c for c in compat_checks(tmp_path / "elsewhere")}
    assert "an external checkout" in other["import leaderboard"].detail


def test_compat_layer_is_reported_as_shadowing_a_checkout_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leaderboard checkout first on sys.path: harness binds its own layer before loading an
    agent file, so the doctor names the layer in use and the checkout it shadows."""
    ext = tmp_path / "checkout"
    (ext / "leaderboard").mkdir(parents=True)
    (ext / "leaderboard" / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    monkeypatch.syspath_prepend(str(ext))
    for mod in [m for m in sys.modules if m == "leaderboard" or m.startswith("leaderboard.")]:
        monkeypatch.delitem(sys.modules, mod)
    root = Path(__file__).resolve().parents[1]
    found = {c.name: c for c in compat_checks(root)}
    detail = found["import leaderboard"].detail
    assert detail.startswith("this project's compatibility layer: ")
    assert str(root / "leaderboard" / "__init__.py") in detail
    assert f"shadows {ext / 'leaderboard' / '__init__.py'}" in detail
