"""Input errors that used to slip through as a traceback or as exit status 0: non-finite route
coordinates, route files with nothing runnable, unknown towns, a bad $HARNESS_MAPS entry and a
garbage .xodr beside good towns. Each is one stderr line and exit status 2 (in-process, through
the CLI's error boundary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import run

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = run(list(args))
    got = capsys.readouterr()
    return status, got.out, got.err


def assert_one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def _nan_routes(tmp_path: Path) -> Path:
    text = ROUTES.read_text()
    start = text.index('<position x="') + len('<position x="')
    end = text.index('"', start)
    path = tmp_path / "nan.xml"
    path.write_text(text[:start] + "nan" + text[end:])
    return path


def test_nan_waypoint_in_routes_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _cli(capsys, "routes", "check", str(_nan_routes(tmp_path)))
    assert_one_line_error(status, err, "nan.xml:", 'x="nan"', "finite")


def test_nan_waypoint_in_gen_teachers_routes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan = _nan_routes(tmp_path)
    out = tmp_path / "ds"
    status, _, err = _cli(capsys, "gen-teachers", "--town", "Harness01", "--routes", str(nan),
                          "--out", str(out))  # fmt: skip
    assert_one_line_error(status, err, "nan.xml:", "finite")
    assert not (out / "episodes").exists()


def test_routes_check_with_nothing_runnable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_text("<routes/>\n")
    status, _, err = _cli(capsys, "routes", "check", str(empty))
    assert_one_line_error(status, err, "holds no routes")
    elsewhere = tmp_path / "town99.xml"
    elsewhere.write_text(ROUTES.read_text().replace('town="Harness01"', 'town="Town99"'))
    status, _, err = _cli(capsys, "routes", "check", str(elsewhere))
    assert_one_line_error(status, err, "Town99", "not available")


def test_towns_named_but_not_found(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HARNESS_MAPS", raising=False)
    status, out, err = _cli(capsys, "towns", "Town05")
    assert_one_line_error(status, err, "unknown town 'Town05'")
    assert "Town05" not in out


def test_relative_maps_folder_that_does_not_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_MAPS", "../shared/data/maps")
    for args in (("towns",), ("sim", "bench", "--town", "Town01", "--ticks", "1")):
        status, _, err = _cli(capsys, *args)
        assert_one_line_error(status, err, "../shared/data/maps", str(tmp_path))


def test_garbage_xodr_does_not_hide_good_towns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Broken.xodr").write_text("<notOpenDrive/>")
    monkeypatch.setenv("HARNESS_MAPS", str(tmp_path))
    status, out, err = _cli(capsys, "towns")
    assert status == 0, err
    assert "Harness01" in out and "Broken" in out and "does not load" in out
    assert err.startswith("warning: ") and "Broken.xodr" in err
    status, _, err = _cli(capsys, "towns", "Broken")
    assert status == 2 and "Broken.xodr" in err
