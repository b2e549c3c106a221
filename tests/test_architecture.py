"""The layering of ARCHITECTURE.md, checked on the source: every import statement of every
production module (function-level imports included) against the layer rules, and no test
oracle (``*_numpy`` twin) left in production code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ("harness", "teachers", "scenarios", "drivejepa")

# layer -> packages it must never import (lower layers never import higher ones)
ABOVE_WORLD = ("harness.dynamics", "harness.sim", "harness.leaderboard", "harness.planning",
               "harness.runner", "harness.cli", "teachers", "scenarios", "drivejepa")  # fmt: skip
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "harness.geometry": ("harness.maps", "harness.world", *ABOVE_WORLD),
    "harness.errors": ("harness.maps", "harness.world", *ABOVE_WORLD),
    "harness.io": ("harness.maps", "harness.world", *ABOVE_WORLD),
    "harness.fingerprint": ("harness.maps", "harness.world", *ABOVE_WORLD),
    "harness.maps": ("harness.world", "harness.routes", *ABOVE_WORLD),
    "harness.routes": ("harness.world", *ABOVE_WORLD),
    "harness.world": ABOVE_WORLD,
    "harness.dynamics": ABOVE_WORLD[1:],
    "harness.sim": ("harness.leaderboard", "harness.planning", "harness.runner", "harness.cli",
                    "teachers", "scenarios", "harness.report", "drivejepa"),  # fmt: skip
    "harness.leaderboard": ("harness.sim", "harness.planning", "harness.runner", "harness.cli",
                            "teachers", "scenarios", "drivejepa"),  # fmt: skip
    "harness.planning": ("harness.sim", "harness.leaderboard", "harness.runner", "harness.cli",
                         "teachers", "scenarios", "drivejepa"),  # fmt: skip
    "harness.runner": ("harness.cli", "teachers", "harness.report", "drivejepa"),
    "harness.report": ("harness.cli", "teachers", "drivejepa"),
    "teachers": ("harness.sim", "harness.cli", "drivejepa"),
    "scenarios": ("harness.sim", "harness.runner", "harness.cli", "teachers", "drivejepa"),
    "drivejepa": ("harness.cli",),  # the planner package: the CLI edge imports it, never the reverse
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement, relative ones resolved."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")[: -node.level]
                base = ".".join(pkg + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def _sources() -> list[Path]:
    return sorted(p for pkg in PRODUCTION for p in (ROOT / pkg).rglob("*.py"))


def _layer(module: str) -> str | None:
    """The most specific rule key ``module`` falls under."""
    keys = [k for k in FORBIDDEN if module == k or module.startswith(k + ".")]
    return max(keys, key=len) if keys else None


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_layers_never_import_upwards() -> None:
    bad: list[str] = []
    for path in _sources():
        module = _module_name(path)
        layer = _layer(module)
        if layer is None:
            continue
        for line, name in _imports(ast.parse(path.read_text()), module):
            for banned in FORBIDDEN[layer]:
                if _within(name, banned) and not _within(module, banned):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} ({layer} < {banned})")
    assert not bad, "layering violations:\n" + "\n".join(sorted(set(bad)))


def test_no_numpy_twins_in_production() -> None:
    """Executable references (the numpy versions of numba kernels) live under tests/."""
    twins = [
        f"{p.relative_to(ROOT)}: {n.name}"
        for p in _sources()
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.FunctionDef) and n.name.endswith("_numpy")
    ]
    assert not twins, "numpy twins in production modules:\n" + "\n".join(twins)


def test_only_the_runner_loops_over_backend_ticks() -> None:
    """One episode loop: outside harness.runner nothing calls ``.tick(`` on a backend inside a
    loop (scenarios tick their own behaviour trees, which is not a backend tick)."""
    offenders: list[str] = []
    for path in _sources():
        module = _module_name(path)
        if _within(module, "harness.runner"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.For | ast.While):
                continue
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "tick"
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id in ("sim", "backend", "simulator")
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert not offenders, "episode loops outside the runner:\n" + "\n".join(offenders)


@pytest.mark.parametrize("name", ["harness.world.state", "harness.io", "harness.world.timing"])
def test_low_layers_import_alone(name: str) -> None:
    """The lowest layers import without pulling the simulator in."""
    import subprocess
    import sys

    code = f"import sys, {name}; print(any(m.startswith('harness.sim') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
