"""Packaging rules from the architecture: nothing of ours is importable as `agents`, the package
data ships, and the console script exists."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_agents_folder_never_shadows_carlas_agents_package(tmp_path: Path) -> None:
    """With the repo root FIRST on sys.path, `import agents` still finds CARLA's PythonAPI package
    (a regular package) because our agents/ folder has no __init__.py."""
    carla_api = tmp_path / "PythonAPI" / "carla"
    (carla_api / "agents" / "navigation").mkdir(parents=True)
    (carla_api / "agents" / "__init__.py").write_text("OWNER = 'carla'\n")
    (carla_api / "agents" / "navigation" / "__init__.py").write_text("")
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(REPO)!r}, {str(carla_api)!r}]
        import agents, agents.navigation
        print(agents.OWNER)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "carla"
    assert not (REPO / "agents" / "__init__.py").exists()


def test_installed_distribution_has_no_agents_package() -> None:
    from importlib.metadata import files

    shipped = {str(f).split("/")[0] for f in files("harness") or []}
    assert "agents" not in shipped


def test_builtin_route_file_is_package_data() -> None:
    from importlib import resources

    assert (resources.files("scenarios") / "routes" / "harness01_routes.xml").is_file()
