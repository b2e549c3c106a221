"""`harness eval` in parallel and crash-proof: the same records whatever runs the routes (one
process, two forked workers, Ray actors), committed in record-index order; an agent crash is
retried once; a worker process killed under a route (a real SIGKILL) costs only that route; the
parent killed mid-run (a real SIGKILL) and resumed gives the records of an uninterrupted run.

The runs use four short generated routes on the built-in town with a little traffic and an agent
file that is the lane follower, except that on chosen routes its first step raises or SIGKILLs its
own process, a given number of times (counted through marker files, so a retry sees them)."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from harness.leaderboard.route_criteria import CriteriaConfig
from harness.maps import load_town
from harness.routes.generate import generate_routes
from harness.routes.xml_io import read_route_file, write_routes
from harness.runner import Mode, RunConfig, run_evaluation
from harness.runner.route_runner import STEPS_DIR
from harness.world.backend import TrafficConfig

REPO = Path(__file__).resolve().parents[1]
TOWN = "Harness01"
ROUTES, ROUTE_M, ROUTE_SEED = 4, 90.0, 7  # short routes: a run takes a few seconds
TRAFFIC = TrafficConfig(vehicles=4, pedestrians=0)

FLAKY_AGENT = '''
import json
import os
import signal
from pathlib import Path

from harness.leaderboard.loader import load_agent

LaneFollow, _ = load_agent("lane_follow")


def get_entry_point():
    return "FlakyAgent"


class FlakyAgent(LaneFollow):
    """The lane follower; on the routes its config names, its first step raises or SIGKILLs
    this process, as many times as the config says (marker files count the times)."""

    def setup(self, path_to_conf_file):
        super().setup(path_to_conf_file)
        self._faults = json.loads(Path(path_to_conf_file).read_text())
        self._first = True

    def run_step(self, input_data, timestamp):
        if self._first:
            self._first = False
            (x, y, _z, _yaw), _ = self._global_plan_world_coord[0]
            for fault in self._faults:
                if abs(x - fault["x"]) < 0.5 and abs(y - fault["y"]) < 0.5:
                    marks = Path(fault["dir"])
                    n = len(list(marks.iterdir()))
                    if n < fault["times"]:
                        (marks / str(n)).write_text(str(os.getpid()))
                        if fault["how"] == "kill":
                            os.kill(os.getpid(), signal.SIGKILL)
                        raise RuntimeError("flaky agent")
        return super().run_step(input_data, timestamp)
'''


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without its wall-clock fields (meta.duration_system) and the per-run
    save_name (which may carry a timestamp)."""
    out = copy.deepcopy(results)

    def strip(d: Any) -> None:
        if isinstance(d, dict):
            d.pop("duration_system", None)
            d.pop("save_name", None)
            for v in d.values():
                strip(v)
        elif isinstance(d, list):
            for v in d:
                strip(v)

    strip(out)
    return out


def steps_tables(out: Path) -> dict[str, Any]:
    """Every route's per-step table (values only, no file metadata)."""
    return {
        p.name: pq.read_table(p).replace_schema_metadata(None)
        for p in sorted((out / STEPS_DIR).glob("*.parquet"))
    }


class Setup:
    """The route file, the agent file and a way to write fault configs, in one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.routes = root / "routes.xml"
        write_routes(
            generate_routes(load_town(TOWN), ROUTES, ROUTE_M, seed=ROUTE_SEED), self.routes
        )
        self.starts = [tuple(r.keypoints[0, :2]) for r in read_route_file(self.routes)]
        self.agent = root / "flaky_agent.py"
        self.agent.write_text(FLAKY_AGENT)

    def faults(self, name: str, spec: dict[int, tuple[str, int]]) -> Path:
        """A config making route ``i`` fail ``how`` ('raise' / 'kill') ``times`` times."""
        faults = []
        for i, (how, times) in spec.items():
            marks = self.root / f"{name}_marks_{i}"
            marks.mkdir()
            x, y = self.starts[i]
            faults.append({"x": x, "y": y, "how": how, "times": times, "dir": str(marks)})
        path = self.root / f"{name}.json"
        path.write_text(json.dumps(faults))
        return path

    def config(self, name: str, faults: Path, **kw: Any) -> RunConfig:
        return RunConfig.for_mode(
            Mode.BENCH2DRIVE, agent=str(self.agent), routes_file=self.routes,
            out_dir=self.root / name, agent_config=str(faults),
            criteria=CriteriaConfig(blocked_time_s=3.0, tick_limit=4000), traffic=TRAFFIC, **kw,
        )  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("parallel"))


@pytest.fixture(scope="module")
def baseline(setup: Setup) -> dict[str, Any]:
    """The uninterrupted one-process run (no faults)."""
    result = run_evaluation(setup.config("baseline", setup.faults("none", {})))
    assert len(result.records) == ROUTES
    # the routes differ (so results put at the wrong index would show): their step tables
    tables = steps_tables(setup.root / "baseline")
    assert len(tables) == ROUTES
    assert len({round(float(t.column("x_m")[0].as_py()), 1) for t in tables.values()}) == ROUTES
    return result.results


def test_two_workers_give_the_records_of_one(setup: Setup, baseline: dict[str, Any]) -> None:
    """Same records and per-step tables with two workers; results.json only ever holds
    records 0 .. k-1 with progress [k, total] (committed in index order)."""
    config = setup.config("two", setup.root / "none.json", workers=2)
    seen: list[tuple[list[int], list[int]]] = []

    def on_route(_route: object, _result: object) -> None:
        data = json.loads(config.results_path.read_text())
        ckpt = data["_checkpoint"]
        seen.append(([r["index"] for r in ckpt["records"]], ckpt["progress"]))

    result = run_evaluation(config, on_route=on_route)
    assert seen == [(list(range(k)), [k, ROUTES]) for k in range(1, ROUTES + 1)]
    assert result.ran == tuple(range(ROUTES))
    assert comparable(result.results) == comparable(baseline)
    assert steps_tables(config.out_dir) == steps_tables(setup.root / "baseline")


def test_agent_crash_is_retried_once(setup: Setup, baseline: dict[str, Any]) -> None:
    """Route 1 crashes once (the retry drives it as the baseline did); route 2 crashes twice
    and is recorded 'Failed - Agent crashed'; the run goes on."""
    faults = setup.faults("raise", {1: ("raise", 1), 2: ("raise", 5)})
    result = run_evaluation(setup.config("raise", faults))
    got, want = comparable(result.results), comparable(baseline)
    recs, base = got["_checkpoint"]["records"], want["_checkpoint"]["records"]
    assert [recs[i] for i in (0, 1, 3)] == [base[i] for i in (0, 1, 3)]
    assert recs[2]["status"] == "Failed - Agent crashed"
    assert len(list((setup.root / "raise_marks_1").iterdir())) == 1
    assert len(list((setup.root / "raise_marks_2").iterdir())) == 2  # two attempts, no third


def test_killed_worker_costs_only_its_route(setup: Setup, baseline: dict[str, Any]) -> None:
    """A worker SIGKILLed under route 1 is replaced and route 1 runs again (same record as the
    baseline); route 2 kills its worker twice and is recorded 'Failed - Simulation crashed'."""
    faults = setup.faults("kill", {1: ("kill", 1), 2: ("kill", 5)})
    result = run_evaluation(setup.config("kill", faults, workers=2))
    got, want = comparable(result.results), comparable(baseline)
    recs, base = got["_checkpoint"]["records"], want["_checkpoint"]["records"]
    assert [recs[i] for i in (0, 1, 3)] == [base[i] for i in (0, 1, 3)]
    assert recs[2]["status"] == "Failed - Simulation crashed"
    assert recs[2]["scores"]["score_composed"] == 0.0
    pids = {p.read_text() for p in (setup.root / "kill_marks_2").iterdir()}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two workers died, not this process
    assert got["entry_status"] == "Crashed"  # the leaderboard's entry status after a sim crash


def _children(pid: int) -> set[int]:
    """Child process ids of ``pid`` (Linux /proc). A thread (or the process) that ends between
    the listing and the read is skipped: it has no children to report any more."""
    kids: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return kids
    for task in tasks:
        try:
            text = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        kids |= {int(k) for k in text}
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_parent_killed_mid_run_resumes_to_identical_records(
    setup: Setup, baseline: dict[str, Any]
) -> None:
    """SIGKILL the `harness eval --workers 2` process once it has committed a route: its
    workers die with it, results.json is whole, and the same command resumes to the records of
    the uninterrupted run."""
    config = setup.config("killed", setup.root / "none.json", workers=2)
    cmd = [
        sys.executable, "-m", "harness", "eval", "--agent", str(config.agent), "--agent-config",
        config.agent_config, "--routes", str(config.routes_file), "--out", str(config.out_dir),
        "--workers", "2", "--blocked-time", str(config.criteria.blocked_time_s),
        "--traffic", str(TRAFFIC.vehicles), "--pedestrians", str(TRAFFIC.pedestrians), "--quiet",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    results = config.results_path
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        workers |= _children(proc.pid)
        if results.is_file():
            committed = len(json.loads(results.read_text())["_checkpoint"]["records"])
            if committed >= 1:
                break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert workers, "no worker process was seen"
    for _ in range(200):  # PR_SET_PDEATHSIG: the workers follow their parent
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)
    interrupted = json.loads(results.read_text())["_checkpoint"]
    assert 1 <= len(interrupted["records"]) < ROUTES, "killed too late to test a resume"
    assert interrupted["progress"][0] == len(interrupted["records"])

    resumed = run_evaluation(config)  # the CLI's settings: run.json's fingerprint matches
    assert resumed.ran == tuple(range(len(interrupted["records"]), ROUTES))
    assert comparable(resumed.results) == comparable(baseline)


@pytest.mark.slow
def test_ray_gives_the_same_records_and_survives_a_lost_actor(
    setup: Setup, baseline: dict[str, Any]
) -> None:
    """`--ray auto` (a local cluster, two actors): the records of the one-process run, also
    when an actor process is SIGKILLed under route 1 (it is replaced and the route runs again)."""
    pytest.importorskip("ray")
    faults = setup.faults("ray", {1: ("kill", 1)})
    result = run_evaluation(setup.config("ray", faults, workers=2, ray_address="auto"))
    assert comparable(result.results) == comparable(baseline)
    assert len(list((setup.root / "ray_marks_1").iterdir())) == 1


def test_repetitions_follow_the_leaderboard_indexer(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """--repetitions 2 over routes 0 and 2: records i*R + r with ids ..._rep<r>, every
    repetition with its own seed, repetition 0 with the seed of a run without repetitions; the
    progress bar ends at 4/4 with the mean DS."""
    from harness.runner.route_runner import route_seed

    config = replace(
        setup.config("reps", setup.root / "none.json", repetitions=2, subset="0,2"),
        agent="do_nothing", criteria=CriteriaConfig(blocked_time_s=0.5, tick_limit=4000),
    )  # fmt: skip
    capsys.readouterr()
    result = run_evaluation(config, progress=True)
    bar = " ".join(capsys.readouterr().err.split())
    assert "4/4" in bar and "DS 0.00" in bar, bar
    ids = [r.route_id for r in result.records]
    assert ids == ["RouteScenario_0_rep0", "RouteScenario_0_rep1", "RouteScenario_2_rep0",
                   "RouteScenario_2_rep1"]  # fmt: skip
    assert [r.index for r in result.records] == [0, 1, 2, 3]
    seeds = [
        int(pq.read_schema(config.out_dir / STEPS_DIR / f"{i}.parquet").metadata[b"harness.seed"])
        for i in ids
    ]
    assert seeds == [route_seed(0, 0), route_seed(0, 0, 1), route_seed(0, 2), route_seed(0, 2, 1)]
    assert len(set(seeds)) == 4
    assert (
        json.loads((config.out_dir / "harness" / "run.json").read_text())["config"]["repetitions"]
        == 2
    )


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:  # fmt: skip
    """`harness eval ARGS` through the CLI's error boundary in this process: (status, stderr)."""
    from harness.cli.main import run

    capsys.readouterr()
    status = run(["eval", *args])
    return status, capsys.readouterr().err


def test_bad_combinations_are_one_line_errors(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    routes = ("--routes", str(setup.routes))
    out = ("--out", str(tmp_path / "out"))
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    for args, message in (
        ((), "give exactly one of --routes FILE"),
        ((*routes, "--town", TOWN), "give exactly one of --routes FILE"),
        ((*routes, "--workers", "0"), "--workers must be >= 1"),
        ((*routes, "--repetitions", "0"), "--repetitions must be >= 1"),
        ((*routes, "--backend", "carla", "--workers", "2"), "one route at a time"),
        ((*routes, "--backend", "carla", "--ray", "auto"), "one route at a time"),
        ((*routes, "--ray", "auto"), "pip install 'harness[ray]'"),
        (("--town", "Town99"), "Town99"),
    ):
        status, err = _main(["--agent", "do_nothing", *out, *args], monkeypatch, capsys)
        assert status == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and message in " ".join(err.split()), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_town_routes_are_written_into_out(tmp_path: Path) -> None:
    """--town: the generated routes go to OUT/routes_<town>.xml (the gen-teachers generator,
    seeded by --seed); the same command finds the same file; another seed refuses to resume
    over it and replaces it with --no-resume."""
    from harness.cli.eval_cmd import build_config
    from harness.errors import ConfigError
    from harness.runner.town_routes import GENERATED_ROUTE_M, GENERATED_ROUTES

    def config(seed: int, resume: bool = True) -> RunConfig:
        return build_config(
            agent="do_nothing", routes=None, town=TOWN, subset=None, out=tmp_path, agent_config="",
            resume=resume, rerun_crashed=False, seed=seed, traffic=0, pedestrians=0,
            record=False, penalties=None, mode="bench2drive", blocked_time_s=None,
        )  # fmt: skip

    path = config(3).routes_file
    assert path == tmp_path / f"routes_{TOWN}.xml"
    want = generate_routes(load_town(TOWN), GENERATED_ROUTES, GENERATED_ROUTE_M, seed=3)
    got = read_route_file(path)
    assert [r.id for r in got] == [r.id for r in want]
    assert all((a.keypoints[:, :2].round(2) == b.keypoints[:, :2].round(2)).all()
               for a, b in zip(got, want, strict=True))  # fmt: skip
    text = path.read_bytes()
    assert config(3).routes_file == path and path.read_bytes() == text
    with pytest.raises(ConfigError, match="--no-resume"):
        config(4)
    assert path.read_bytes() == text
    config(4, resume=False)
    assert path.read_bytes() != text


def test_gen_teachers_ray_without_ray_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli.main import run

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    capsys.readouterr()
    status = run(["gen-teachers", "--town", TOWN, "--out", str(tmp_path / "t"), "--ray", "auto"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "pip install 'harness[ray]'" in err
    assert not (tmp_path / "t").exists()
