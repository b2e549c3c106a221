"""Episode recording: every tick's :class:`WorldState` kept in cheap buffers, written to one
Parquet file per episode (atomically) and loaded back as per-frame states.

File schema (one file per episode, long format; every row has a ``table`` column saying what it is):

- ``table == "actor"`` rows, one per (frame, valid actor): ``frame`` int64, ``time_s`` float64,
  ``slot`` int32 (row in the padded ActorArrays), ``actor_id`` int64, ``kind`` int8 (ActorKind),
  ``role`` int8 (ActorRole), ``x, y, z`` [m], ``yaw`` [rad], ``speed`` [m/s], ``accel`` [m/s2],
  ``yaw_rate`` [rad/s], ``length, width, height`` [m] (float64; CARLA world frame, box centres).
- ``table == "light"`` rows, one per (frame, light): ``frame``, ``time_s``, ``light`` int32 (index
  into town.signals lights), ``light_state`` int8 (LightState), ``light_elapsed_s`` float64.
  Columns that do not apply to a row's table are null.
- Parquet schema key-value metadata (UTF-8 JSON values): ``harness.meta`` (episode metadata: town,
  seed, route, version, ...), ``harness.events`` (list of events, each with the frame of the state
  that carried it), ``harness.frames`` (frame numbers and times of every recorded tick, so ticks
  without rows survive), ``harness.layout`` (actor capacity N, light count T, schema version),
  and since schema 2, optionally ``harness.route`` (:class:`RouteTrack`: the route driven, route
  completion per tick and every scored infraction, so a replay can draw the running RC / DS;
  absent in schema-1 files and for episodes without a route, which still load and replay).

Invalid (padding) actor rows are not stored; they load back as :meth:`ActorArrays.empty` fills.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

import harness
from harness.errors import HarnessError
from harness.io import atomic_output
from harness.world.state import ActorArrays, Event, EventKind, WorldState

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # schema 1 files lack only the optional route track
CHUNK_TICKS = 512  # ticks per preallocated buffer chunk
FLOAT_FIELDS = ("x", "y", "z", "yaw", "speed", "accel", "yaw_rate", "length", "width", "height")
INT_FIELDS = ("actor_id", "kind", "role")  # stored in one int64 block per tick
META_KEY = b"harness.meta"
EVENTS_KEY = b"harness.events"
FRAMES_KEY = b"harness.frames"
LAYOUT_KEY = b"harness.layout"
ROUTE_KEY = b"harness.route"
TABLE_ACTOR = "actor"
TABLE_LIGHT = "light"

SCHEMA = pa.schema(
    [
        ("table", pa.dictionary(pa.int8(), pa.string())),
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("slot", pa.int32()),
        ("actor_id", pa.int64()),
        ("kind", pa.int8()),
        ("role", pa.int8()),
        *[(name, pa.float64()) for name in FLOAT_FIELDS],
        ("light", pa.int32()),
        ("light_state", pa.int8()),
        ("light_elapsed_s", pa.float64()),
    ]
)


class RecordingError(HarnessError):
    """A recording file that is missing, unreadable or not a harness episode recording."""


@dataclass(frozen=True)
class ScoredInfraction:
    """One route infraction as the criteria scored it: leaderboard ``key`` and ``text``, when
    (``frame``, ``time_s`` [s]) and where (``x_m``, ``y_m``: the ego) it happened, and the
    ``factor`` it multiplied the infraction penalty by."""

    key: str
    text: str
    frame: int
    time_s: float
    x_m: float
    y_m: float
    factor: float


@dataclass(frozen=True)
class RouteTrack:
    """The route of an episode and its score over time: ``route_xy`` (R, 2) [m] the planned
    route, ``frames`` (K,) the ticks with a completion sample and ``progress_pct`` (K,) route
    completion [%] after each, ``infractions`` in the order they happened."""

    route_xy: NDArray[np.float64]
    frames: NDArray[np.int64]
    progress_pct: NDArray[np.float64]
    infractions: tuple[ScoredInfraction, ...] = ()

    def __post_init__(self) -> None:
        if self.route_xy.ndim != 2 or self.route_xy.shape[1] != 2:
            raise ValueError(f"route_xy must be (R, 2), got {self.route_xy.shape}")
        if self.frames.shape != self.progress_pct.shape:
            raise ValueError("frames and progress_pct must have the same (K,) shape")

    def scores_at(self, frame: int) -> tuple[float, float, float]:
        """(RC [%], IP, DS) as they stood after ``frame``: the last completion sample at or
        before it, times the factors of the infractions up to it."""
        k = int(np.searchsorted(self.frames, frame, side="right")) - 1
        rc = float(self.progress_pct[k]) if k >= 0 else 0.0
        ip = float(np.prod([i.factor for i in self.infractions if i.frame <= frame]))
        return rc, ip, rc * ip

    def to_json(self) -> dict[str, Any]:
        return {
            "route_xy": np.round(self.route_xy, 3).tolist(),
            "frames": self.frames.tolist(),
            "progress_pct": np.round(self.progress_pct, 4).tolist(),
            "infractions": [vars(i) for i in self.infractions],
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> RouteTrack:
        return RouteTrack(
            route_xy=np.asarray(d["route_xy"], dtype=np.float64).reshape(-1, 2),
            frames=np.asarray(d["frames"], dtype=np.int64),
            progress_pct=np.asarray(d["progress_pct"], dtype=np.float64),
            infractions=tuple(ScoredInfraction(**i) for i in d.get("infractions", [])),
        )


def _json_default(obj: Any) -> Any:
    """JSON for the numpy values metadata dicts tend to hold (arrays become nested lists)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON serialisable")


def _event_to_json(event: Event, state_frame: int) -> dict[str, Any]:
    return {
        "state_frame": state_frame,
        "kind": event.kind.name,
        "frame": event.frame,
        "time_s": event.time_s,
        "x": event.x,
        "y": event.y,
        "other_id": event.other_id,
        "ref": event.ref,
        "detail": event.detail,
    }


def _event_from_json(d: dict[str, Any]) -> Event:
    return Event(
        kind=EventKind[d["kind"]],
        frame=int(d["frame"]),
        time_s=float(d["time_s"]),
        x=float(d["x"]),
        y=float(d["y"]),
        other_id=int(d["other_id"]),
        ref=int(d["ref"]),
        detail=str(d["detail"]),
    )


GROW_FACTOR = 1.25  # [-] the actor axis widens by at least this factor when it must grow


class EpisodeRecorder:
    """Keeps every appended tick in preallocated chunk buffers (a few array copies per tick) and
    writes the episode as one Parquet file. ``meta`` must name the ``town``."""

    def __init__(self, meta: dict[str, Any]) -> None:
        if "town" not in meta:
            raise ValueError("EpisodeRecorder meta needs a 'town' entry (the replay loads it)")
        self.meta: dict[str, Any] = {"version": harness.__version__, **meta}
        self._n = 0  # ticks recorded
        self._cap = -1  # actor capacity N (fixed by the first tick)
        self._t = -1  # light count T
        self._last_frame = -1
        self._chunks: list[tuple[NDArray[Any], ...]] = []
        self._events: list[tuple[Event, int]] = []
        self.route: RouteTrack | None = None  # set before writing to store the route track

    def __len__(self) -> int:
        return self._n

    def _new_chunk(self) -> tuple[NDArray[Any], ...]:
        c, n, t = CHUNK_TICKS, self._cap, self._t
        return (
            np.zeros(c, np.int64),  # frame
            np.zeros(c, np.float64),  # time_s
            np.zeros((c, len(FLOAT_FIELDS), n), np.float64),
            np.zeros((c, len(INT_FIELDS), n), np.int64),
            np.zeros((c, n), np.bool_),
            np.zeros((c, t), np.int8),
            np.zeros((c, t), np.float64),
        )

    def append(self, state: WorldState) -> None:
        """Copy one tick's arrays into the buffers (the state may reuse its arrays afterwards)."""
        a = state.actors
        if self._n == 0:
            self._cap, self._t = a.n, int(state.light_state.shape[0])
        elif state.light_state.shape[0] != self._t:
            raise ValueError(
                f"tick {state.frame}: {state.light_state.shape[0]} lights differ from the "
                f"episode's {self._t}; a town's lights are fixed for an episode"
            )
        elif state.frame <= self._last_frame:
            raise ValueError(
                f"frame {state.frame} after frame {self._last_frame}: record ticks in order"
            )
        if a.n > self._cap:  # scenarios spawned actors: widen every buffer (rare)
            self._grow(a.n)
        self._last_frame = state.frame
        i = self._n % CHUNK_TICKS
        if i == 0:
            self._chunks.append(self._new_chunk())
        frame, time_s, fl, it, valid, ls, le = self._chunks[-1]
        frame[i] = state.frame
        time_s[i] = state.time_s
        if a.n == self._cap:
            # one concatenate per block into the (contiguous) buffer row: cheapest copy measured
            np.concatenate(
                [a.x, a.y, a.z, a.yaw, a.speed, a.accel, a.yaw_rate, a.length, a.width, a.height],
                out=fl[i].reshape(-1),
            )
            np.concatenate([a.actor_id, a.kind, a.role], out=it[i].reshape(-1))
            valid[i] = a.valid
        else:  # fewer actors than the widest tick so far: the rest of the row is padding
            for k, name in enumerate(FLOAT_FIELDS):
                fl[i, k, : a.n] = getattr(a, name)
            for k, name in enumerate(("actor_id", "kind", "role")):
                it[i, k, : a.n] = getattr(a, name)
            fl[i, :, a.n :] = 0.0
            it[i, :, a.n :] = 0
            valid[i, : a.n] = a.valid
            valid[i, a.n :] = False
        ls[i] = state.light_state
        le[i] = state.light_elapsed_s
        for ev in state.events:
            self._events.append((ev, state.frame))
        self._n += 1

    def _grow(self, n: int) -> None:
        """Widen the actor axis of every buffer to at least n slots (new slots invalid)."""
        cap = max(n, int(self._cap * GROW_FACTOR) + 1)
        grown: list[tuple[NDArray[Any], ...]] = []
        for frame, time_s, fl, it, valid, ls, le in self._chunks:
            pad = cap - self._cap
            grown.append((
                frame, time_s,
                np.pad(fl, ((0, 0), (0, 0), (0, pad))),
                np.pad(it, ((0, 0), (0, 0), (0, pad))),
                np.pad(valid, ((0, 0), (0, pad))),
                ls, le,
            ))  # fmt: skip
        self._chunks, self._cap = grown, cap

    def _stacked(self) -> tuple[NDArray[Any], ...]:
        """The buffers concatenated and trimmed to the recorded ticks."""
        parts = list(zip(*self._chunks, strict=True))
        return tuple(np.concatenate(p)[: self._n] for p in parts)

    def to_table(self) -> pa.Table:
        """The episode as an Arrow table with the file's schema and metadata."""
        if self._n == 0:
            raise ValueError("nothing recorded: append at least one WorldState before writing")
        frame, time_s, fl, it, valid, ls, le = self._stacked()
        f_idx, slot = np.nonzero(valid)  # row-major: frame, then slot
        na = f_idx.size
        cols: dict[str, pa.Array] = {
            "frame": pa.array(frame[f_idx]),
            "time_s": pa.array(time_s[f_idx]),
            "slot": pa.array(slot.astype(np.int32)),
            "actor_id": pa.array(it[f_idx, 0, slot]),
            "kind": pa.array(it[f_idx, 1, slot].astype(np.int8)),
            "role": pa.array(it[f_idx, 2, slot].astype(np.int8)),
        }
        for k, name in enumerate(FLOAT_FIELDS):
            cols[name] = pa.array(fl[f_idx, k, slot])
        for name, typ in (
            ("light", pa.int32()),
            ("light_state", pa.int8()),
            ("light_elapsed_s", pa.float64()),
        ):
            cols[name] = pa.nulls(na, typ)
        actors = self._table(TABLE_ACTOR, na, cols)

        nt = self._n * self._t
        lcols: dict[str, pa.Array] = {
            "frame": pa.array(np.repeat(frame, self._t)),
            "time_s": pa.array(np.repeat(time_s, self._t)),
            "light": pa.array(np.tile(np.arange(self._t, dtype=np.int32), self._n)),
            "light_state": pa.array(ls.reshape(-1)),
            "light_elapsed_s": pa.array(le.reshape(-1)),
        }
        for name in ("slot", "actor_id", "kind", "role", *FLOAT_FIELDS):
            lcols[name] = pa.nulls(nt, SCHEMA.field(name).type)
        lights = self._table(TABLE_LIGHT, nt, lcols)

        table = pa.concat_tables([actors, lights])
        events = [_event_to_json(ev, sf) for ev, sf in self._events]
        md = {
            META_KEY: json.dumps(self.meta, default=_json_default),
            EVENTS_KEY: json.dumps(events),
            FRAMES_KEY: json.dumps({"frame": frame.tolist(), "time_s": time_s.tolist()}),
            LAYOUT_KEY: json.dumps(
                {"capacity": self._cap, "lights": self._t, "schema_version": SCHEMA_VERSION}
            ),
        }
        if self.route is not None:
            md[ROUTE_KEY] = json.dumps(self.route.to_json())
        return table.replace_schema_metadata(md)

    @staticmethod
    def _table(name: str, n: int, cols: dict[str, pa.Array]) -> pa.Table:
        tab = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([name]))
        arrays = [tab if f.name == "table" else cols[f.name] for f in SCHEMA]
        return pa.Table.from_arrays(arrays, schema=SCHEMA)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the episode to ``path`` (one Parquet file, via a temp file and os.replace)."""
        out = Path(path)
        table = self.to_table()
        with atomic_output(out) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        log.info("wrote %d ticks, %d events to %s", self._n, len(self._events), out)
        return out

    def to_recording(self) -> Recording:
        """The episode as a loaded :class:`Recording`, without a file (e.g. to render a video)."""
        return recording_from_table(self.to_table(), Path("<in memory>"))


@dataclass(frozen=True, eq=False)
class Recording:
    """A loaded episode. ``actors`` holds (F, N) arrays (frame-major); ``light_state`` and
    ``light_elapsed_s`` are (F, T); ``events`` are all events with the frame of their state."""

    frames: NDArray[np.int64]  # (F,) simulator frame numbers
    time_s: NDArray[np.float64]  # (F,) [s]
    actors: ActorArrays  # every field (F, N)
    light_state: NDArray[np.int8]  # (F, T) LightState
    light_elapsed_s: NDArray[np.float64]  # (F, T) [s]
    events: tuple[Event, ...]
    event_state_frames: NDArray[np.int64]  # (E,) frame of the state each event came with
    meta: dict[str, Any] = field(default_factory=dict)
    route: RouteTrack | None = None  # schema 2 files of route episodes

    @property
    def town(self) -> str:
        return str(self.meta["town"])

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def index_of(self, frame: int) -> int:
        """Row of simulator frame ``frame``; RecordingError when it was not recorded."""
        i = int(np.searchsorted(self.frames, frame))
        if i >= len(self) or self.frames[i] != frame:
            raise RecordingError(
                f"frame {frame} is not in the recording ({self.frames[0]}..{self.frames[-1]})"
            )
        return i

    def state_at(self, i: int) -> WorldState:
        """The WorldState of the i-th recorded tick."""
        a = self.actors
        actors = ActorArrays(**{k: getattr(a, k)[i].copy() for k in a.__dataclass_fields__})
        sel = np.flatnonzero(self.event_state_frames == self.frames[i])
        return WorldState(
            frame=int(self.frames[i]),
            time_s=float(self.time_s[i]),
            actors=actors,
            light_state=self.light_state[i].copy(),
            light_elapsed_s=self.light_elapsed_s[i].copy(),
            events=tuple(self.events[j] for j in sel),
        )

    def state(self, frame: int) -> WorldState:
        """The WorldState recorded at simulator frame ``frame``."""
        return self.state_at(self.index_of(frame))

    def states(self) -> Iterator[WorldState]:
        """Every recorded tick in order."""
        for i in range(len(self)):
            yield self.state_at(i)


def _read_json(md: dict[bytes, bytes], key: bytes, path: Path) -> Any:
    if key not in md:
        raise RecordingError(
            f"{path} is not a harness episode recording (no {key.decode()} metadata); record one with the runner's recording option"
        )
    return json.loads(md[key].decode("utf-8"))


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Read an episode written by :meth:`EpisodeRecorder.write`."""
    p = Path(path)
    if not p.is_file():
        raise RecordingError(
            f"recording {p} does not exist; pass the .parquet file an episode was recorded to"
        )
    try:
        table = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise RecordingError(
            f"{p} is not a readable Parquet file ({exc}); pass an episode .parquet recording"
        ) from exc
    return recording_from_table(table, p)


def recording_from_table(table: pa.Table, p: Path) -> Recording:
    """A :class:`Recording` from an episode table (``p`` names its origin in errors)."""
    md = table.schema.metadata or {}
    meta = _read_json(md, META_KEY, p)
    layout = _read_json(md, LAYOUT_KEY, p)
    fr = _read_json(md, FRAMES_KEY, p)
    ev = _read_json(md, EVENTS_KEY, p)
    if layout.get("schema_version") not in READABLE_VERSIONS:
        raise RecordingError(
            f"{p} has recording schema {layout.get('schema_version')}, this harness reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}; re-record the episode"
        )
    route = RouteTrack.from_json(json.loads(md[ROUTE_KEY])) if ROUTE_KEY in md else None
    frames = np.asarray(fr["frame"], dtype=np.int64)
    times = np.asarray(fr["time_s"], dtype=np.float64)
    n_f, cap, n_t = frames.size, int(layout["capacity"]), int(layout["lights"])

    tab = table.column("table").combine_chunks().dictionary_decode().to_numpy(zero_copy_only=False)
    row_frame = np.searchsorted(frames, table.column("frame").to_numpy())

    def col(name: str, rows: NDArray[np.bool_]) -> NDArray[Any]:
        return table.column(name).filter(pa.array(rows)).to_numpy()

    arows = tab == TABLE_ACTOR
    fi, slot = row_frame[arows], col("slot", arows)
    empty = ActorArrays.empty(cap)
    fields: dict[str, NDArray[Any]] = {}
    for name in ActorArrays.__dataclass_fields__:
        base = getattr(empty, name)
        arr = np.broadcast_to(base, (n_f, cap)).copy()
        if name == "valid":
            arr[fi, slot] = True
        else:
            arr[fi, slot] = col(name, arows).astype(base.dtype)
        fields[name] = arr

    lrows = tab == TABLE_LIGHT
    light_state = np.zeros((n_f, n_t), np.int8)
    light_elapsed = np.zeros((n_f, n_t), np.float64)
    lf, li = row_frame[lrows], col("light", lrows)
    light_state[lf, li] = col("light_state", lrows)
    light_elapsed[lf, li] = col("light_elapsed_s", lrows)

    return Recording(
        frames=frames,
        time_s=times,
        actors=ActorArrays(**fields),
        light_state=light_state,
        light_elapsed_s=light_elapsed,
        events=tuple(_event_from_json(d) for d in ev),
        event_state_frames=np.asarray([d["state_frame"] for d in ev], dtype=np.int64),
        meta=meta,
        route=route,
    )
