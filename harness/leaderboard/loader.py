"""Load agent classes from leaderboard-style agent files, by path or by a registered name.

By path, exactly as ``leaderboard_evaluator.py`` does: the file's folder goes on ``sys.path``,
the module is imported by its file stem with ``importlib``, and the class is
``getattr(module, module.get_entry_point())``. Agent files are never imported as a package
called ``agents`` (CARLA's PythonAPI owns that name).

Before the import, the shipped ``leaderboard`` / ``srunner`` compatibility packages are bound
(:func:`harness.leaderboard.compat.bind_compat_packages`), so leaderboard and Bench2Drive agent
files import what they expect. When the import fails, the full traceback goes to the log
(DEBUG: ``harness --verbose``) and the one-line error names the innermost frame.

Registered names resolve inside the agents folder: ``$HARNESS_AGENTS_DIR`` when set, else the
``agents/`` folder beside the installed ``harness`` package (the repository root for the
editable install this project uses).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import HarnessError
from harness.leaderboard.agent import AutonomousAgent
from harness.leaderboard.compat import bind_compat_packages

log = logging.getLogger(__name__)

AGENTS_DIR_ENV = "HARNESS_AGENTS_DIR"
ENTRY_POINT = "get_entry_point"
AGENT_METHODS = ("setup", "sensors", "run_step", "destroy", "set_global_plan")

REGISTERED_AGENTS: dict[str, str] = {
    "do_nothing": "agents/do_nothing_agent.py",
    "lane_follow": "agents/lane_follow_agent.py",
    "expert": "agents/expert_agent.py",
    "drivejepa": "agents/drivejepa_agent.py",
}
"""Registered agent names -> files, relative to the repository root (looked up by file name in
:func:`agents_dir`)."""


class AgentLoadError(HarnessError):
    """An agent file that is missing, fails to import, or has no valid entry point."""


def agents_dir() -> Path:
    """The folder holding the registered agent files: ``$HARNESS_AGENTS_DIR`` when set, else
    ``agents/`` beside the ``harness`` package (the repository root of an editable install)."""
    env = os.environ.get(AGENTS_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "agents"


def registered_path(name: str) -> Path:
    """The file of a registered agent name (which need not exist yet)."""
    return agents_dir() / Path(REGISTERED_AGENTS[name]).name


def resolve_agent_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A registered name or a path to a ``.py`` agent file -> the absolute file path."""
    text = os.fspath(name_or_path)
    if text in REGISTERED_AGENTS:
        path = registered_path(text)
        if not path.is_file():
            raise AgentLoadError(
                f"registered agent '{text}' should be at {path}, which does not exist; "
                f"set ${AGENTS_DIR_ENV} to the folder holding the agent files"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_file():
        names = ", ".join(sorted(REGISTERED_AGENTS))
        raise AgentLoadError(
            f"agent '{text}' is neither a registered name ({names}) nor an existing file; "
            "pass a path to a leaderboard-style agent .py file"
        )
    if path.suffix != ".py":
        raise AgentLoadError(f"agent file {path} is not a .py file; pass the agent's Python file")
    return path.resolve()


def _import_by_stem(path: Path) -> ModuleType:
    """Put the file's folder first on sys.path and import the module by file stem (dropping a
    cached module of the same name from another file, so two agent folders cannot mix)."""
    folder, stem = str(path.parent), path.stem
    if stem == "agents" or not stem.isidentifier():
        raise AgentLoadError(
            f"agent file {path} cannot be imported as module '{stem}'; rename it to a valid "
            "Python module name other than 'agents'"
        )
    if sys.path[:1] != [folder]:
        sys.path.insert(0, folder)
    cached = sys.modules.get(stem)
    if cached is not None and Path(getattr(cached, "__file__", "") or "").resolve() != path:
        del sys.modules[stem]
    importlib.invalidate_caches()
    bind_compat_packages()
    try:
        return importlib.import_module(stem)
    except Exception as exc:  # any error inside the agent's module is the user's to fix
        sys.modules.pop(stem, None)
        log.debug("importing agent file %s failed", path, exc_info=exc)
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "agents":
            hint = (
                "; the agent needs CARLA's PythonAPI 'agents' package: add "
                "$CARLA_ROOT/PythonAPI/carla to PYTHONPATH"
            )
        raise AgentLoadError(
            f"importing agent file {path} failed: {type(exc).__name__}: {exc} "
            f"(at {_innermost_frame(exc)}; rerun as `harness --verbose ...` for the traceback){hint}"
        ) from exc


def _innermost_frame(exc: BaseException) -> str:
    """'file:line in function' of the frame that raised ``exc`` (where a deep import failed)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    if not frames:
        return "unknown location"
    f = frames[-1]
    return f"{f.filename}:{f.lineno} in {f.name}"


def load_agent(name_or_path: str | os.PathLike[str]) -> tuple[type[AutonomousAgent], ModuleType]:
    """The agent class named by the file's ``get_entry_point()``, and its module.

    Classes need not subclass our AutonomousAgent (a leaderboard agent ported with its own base
    class works) but must have the lifecycle methods ``AGENT_METHODS``.
    """
    path = resolve_agent_path(name_or_path)
    module = _import_by_stem(path)
    entry = getattr(module, ENTRY_POINT, None)
    if not callable(entry):
        raise AgentLoadError(
            f"agent file {path} has no {ENTRY_POINT}() function; add one returning the agent "
            "class name, as leaderboard agents do"
        )
    try:
        class_name: Any = entry()
    except Exception as exc:  # the user's entry point failed
        raise AgentLoadError(
            f"{ENTRY_POINT}() of {path} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(class_name, str):
        raise AgentLoadError(
            f"{ENTRY_POINT}() of {path} returned {class_name!r}; it must return the class name as a str"
        )
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise AgentLoadError(
            f"{ENTRY_POINT}() of {path} names '{class_name}', which is not a class in that file"
        )
    missing = [m for m in AGENT_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise AgentLoadError(
            f"agent class {class_name} in {path} lacks {', '.join(missing)}; subclass "
            "harness.leaderboard.AutonomousAgent"
        )
    return cls, module
