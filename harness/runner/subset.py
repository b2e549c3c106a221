"""Route subsets: the ``--routes-subset`` text ('0,3-5') resolved against the route indices of a
route file in file order. Indices are positions in the file (0-based), not route ids, so a
subset means the same routes whatever ids the file uses."""

from __future__ import annotations

from harness.errors import ConfigError

BENCH2DRIVE_ROUTES_FILE = "bench2drive220.xml"  # the file the indices below refer to
# record indices (0-based, file order) of bench2drive220.xml's Town01-06 routes: the project's
# 46-route evaluation set, never used for training data (``harness collect`` excludes them)
BENCH2DRIVE_EVAL_46: tuple[int, ...] = (
    145, 146, 147, 151, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168,
    173, 174, 177, 179, 180, 183, 184, 185, 186, 188, 189, 191, 192, 194, 195, 196, 197, 198,
    200, 201, 202, 203, 206, 207, 208, 209, 210, 211,
)  # fmt: skip


def subset_text(indices: tuple[int, ...]) -> str:
    """Indices as ``--routes-subset`` text ('1,4,7'); :func:`parse_subset` reads it back."""
    return ",".join(str(i) for i in indices)


def parse_subset(text: str | None, total: int) -> tuple[int, ...]:
    """Indices selected by ``text`` among ``total`` routes, ascending and without repeats.

    ``None`` or an empty string selects every route. Items are separated by commas; an item is
    an index ``i`` or an inclusive range ``a-b`` (a <= b). Anything else, or an index outside
    ``0 .. total - 1``, raises ConfigError naming the offending item.
    """
    if total < 1:
        raise ConfigError("the route file holds no routes; nothing to evaluate")
    if text is None or not text.strip():
        return tuple(range(total))
    chosen: set[int] = set()
    for raw in text.split(","):
        item = raw.strip()
        lo, sep, hi = item.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ConfigError(
                f"--routes-subset item {item!r} is not an index or a range like 3-5; "
                f"use comma-separated indices from 0 to {total - 1}"
            ) from None
        if a > b:
            raise ConfigError(f"--routes-subset range {item!r} runs backwards; write it as {b}-{a}")
        if a < 0 or b >= total:
            raise ConfigError(
                f"--routes-subset item {item!r} is outside the file's route indices 0-{total - 1}"
            )
        chosen.update(range(a, b + 1))
    return tuple(sorted(chosen))
