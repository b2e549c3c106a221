"""The leaderboard compatibility layer: binding the shipped top-level ``leaderboard`` and
``srunner`` packages, and handing a leaderboard agent its world, clock and sensor data.

Coexistence rule: inside a harness process the shipped packages win. ``bind_compat_packages``
(called by the agent loader before it imports an agent file) makes ``import leaderboard`` and
``import srunner`` resolve to the folders beside ``harness``, also when a real leaderboard or
ScenarioRunner checkout comes earlier on ``sys.path`` (it is shadowed for this process, with one
warning naming it). The real stack cannot serve the embedded backend: its CarlaDataProvider needs
a server, and ScenarioRunner pins py-trees 0.8.3 and numpy 1.24 where the harness needs newer
ones. To run under the real leaderboard, use its own evaluator and environment (the
``leaderboard_recorder_agent.py`` agent records such drives in the harness's format)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

COMPAT_PACKAGES = ("leaderboard", "srunner")
COMPAT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding harness/ and the packages


def compat_path(name: str) -> Path:
    """The shipped package folder ``name`` (beside ``harness``)."""
    return COMPAT_ROOT / name


def _is_ours(module: ModuleType, name: str) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == compat_path(name) / "__init__.py"


def bind_compat_packages() -> None:
    """Make ``leaderboard`` and ``srunner`` (and their submodules) the shipped packages."""
    for name in COMPAT_PACKAGES:
        current = sys.modules.get(name)
        if current is not None and _is_ours(current, name):
            continue
        init = compat_path(name) / "__init__.py"
        if current is None:
            spec = importlib.util.find_spec(name)
            origin = None if spec is None else spec.origin
            if origin is not None and Path(origin).resolve() == init:
                continue  # a plain import finds ours
        else:
            origin = getattr(current, "__file__", None)
        if origin is not None:
            log.warning(
                "'%s' from %s is shadowed by the harness's compatibility layer (%s); the embedded "
                "backend cannot serve the real package", name, origin, init.parent,
            )  # fmt: skip
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(init.parent)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


def _module(name: str) -> ModuleType:
    bind_compat_packages()
    return importlib.import_module(name)


def data_provider() -> Any:
    """The compat ``CarlaDataProvider`` class."""
    return _module("srunner.scenariomanager.carla_data_provider").CarlaDataProvider


def game_time() -> Any:
    """The compat ``GameTime`` class."""
    return _module("srunner.scenariomanager.timer").GameTime


def leaderboard_agent_base() -> Any:
    """The compat ``leaderboard.autoagents.autonomous_agent.AutonomousAgent``."""
    cls = _module("leaderboard.autoagents.autonomous_agent").AutonomousAgent
    return cls
