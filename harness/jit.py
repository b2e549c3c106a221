"""The project's numba entry point: :func:`njit` compiles with cache=True (the machine code is
kept next to the module, so each machine compiles once; later processes load it in ~0.1 s) and
numpy's error model (no division checks: the kernels guard their divisions).

Importing this module loads numba's CPU target registries and the modules its compiler imports
lazily, up front. numba otherwise imports them at the first compile or cache load, and when that
happens while a caller has swapped ``sys.modules`` for a copy (tests that isolate plug-in imports
do), the next load registers the same types twice and every kernel fails. The ~0.4 s is what the
first kernel call would pay anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numba.core.boxing  # noqa: F401  (imported lazily by the compiler otherwise)
import numba.core.runtime.context  # noqa: F401  (idem)
from numba.core.registry import cpu_target

cpu_target.target_context.refresh()


def njit(fn: Callable[..., Any]) -> Any:
    """numba.njit(cache=True, error_model="numpy") of ``fn``."""
    return numba.njit(cache=True, error_model="numpy")(fn)
