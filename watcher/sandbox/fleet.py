"""A seeded synthetic fleet: realistic CPU/memory profiles with injected changes.

:class:`FleetSpec` describes services, profile types, a time range and step, the sample
volume, noise and drift, and a list of events; :func:`generate` yields one
:class:`~watcher.sandbox.records.ProfileRecord` per service x profile type x step, and
:func:`load_fleet` feeds them to a store.

The shape of the data:

- **Call tree.** Each service gets a call tree of about ``functions`` distinct functions
  built from templates: Go services (``net/http.(*conn).serve`` -> handlers such as
  ``main.handleCheckout`` -> application methods -> library chains such as
  ``encoding/json.Marshal`` ... -> ``runtime.mallocgc``, plus GC and scheduler stacks) and
  some Python services (gunicorn/flask/SQLAlchemy frames). Stacks the caller passes in
  ``FleetSpec.stacks`` (for example real stacks read from pprof files) join every service.
- **Shares.** Leaf stacks get Zipf-like weights ``1 / rank ** zipf_exponent`` over a seeded
  random ranking (a different ranking per profile type).
- **Drift.** Stacks fall in four groups whose weights swing by ``diurnal_amplitude`` over
  the day with different phases (diurnal mix drift); ``diurnal_load`` swings the volume.
- **Noise.** Counts are Dirichlet-multinomial with dispersion ``phi``: per stack a gamma
  draw with shape ``mean / (phi - 1)`` (the normalised gammas are the Dirichlet) mixed with
  Poisson sampling, so ``Var(count) = phi * mean``. Large means use a skew-corrected normal
  (Cornish-Fisher) with the same mean, variance and skewness, which keeps a week of a
  20-service fleet to a few seconds.
- **Values** are in the profile's unit: CPU nanoseconds are ``samples * 1e9 / Hz``,
  bytes ``samples * 512 KiB``, counts are samples.

Events change the expected counts from their time on: :class:`StepRegression` multiplies
a function's self (or total) work by ``factor`` (absolute extra work, so the total grows);
:class:`TransientSpike` does the same for ``duration``; :class:`CostShift` moves
``fraction`` of ``from_fn``'s self work to ``to_fn`` called from the same place;
:class:`VersionChange` switches the series label ``version`` from ``old`` to ``new``.
Services without a version change carry no ``version`` label.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from watcher.analysis.stats import norm_ppf, sample_model
from watcher.sandbox.records import ProfileRecord, Stack

__all__ = [
    "CPU",
    "CostShift",
    "Event",
    "FleetSpec",
    "ProfileSink",
    "StepRegression",
    "TransientSpike",
    "VersionChange",
    "expected_shares",
    "generate",
    "load_fleet",
    "service_stacks",
]

#: The CPU profile type every SDK produces.
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

_DAY_SECONDS = 86_400.0
_GROUPS = 4


@dataclass(frozen=True, slots=True)
class StepRegression:
    """From ``at`` on, ``function``'s self (or, with ``kind="total"``, whole) work x ``factor``."""

    service: str
    function: str
    factor: float
    at: datetime
    kind: Literal["self", "total"] = "self"


@dataclass(frozen=True, slots=True)
class TransientSpike:
    """Like :class:`StepRegression`, but only during ``[at, at + duration)``."""

    service: str
    function: str
    factor: float
    at: datetime
    duration: timedelta
    kind: Literal["self", "total"] = "self"


@dataclass(frozen=True, slots=True)
class CostShift:
    """From ``at`` on, ``fraction`` of ``from_fn``'s self work moves to ``to_fn``.

    ``to_fn`` is called from the same place as ``from_fn`` (a sibling under the same parent),
    so the parent's total does not change.
    """

    service: str
    from_fn: str
    to_fn: str
    fraction: float
    at: datetime


@dataclass(frozen=True, slots=True)
class VersionChange:
    """The ``version`` label of ``service``'s series is ``old`` before ``at`` and ``new`` after."""

    service: str
    old: str
    new: str
    at: datetime


Event = StepRegression | TransientSpike | CostShift | VersionChange

_EVENT_TYPES: dict[str, type[StepRegression | TransientSpike | CostShift | VersionChange]] = {
    "step_regression": StepRegression,
    "transient_spike": TransientSpike,
    "cost_shift": CostShift,
    "version_change": VersionChange,
}


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """Everything that determines a synthetic fleet; the same spec always gives the same data.

    ``samples_per_profile`` is the mean number of samples in one profile (one step) of a
    service at average load; ``service_samples`` overrides it per service. At 100 Hz, one
    busy core for 10 minutes is 60,000 samples. ``dispersion`` is ``phi`` (1 = multinomial).
    ``python_share`` is the fraction of services given Python-style stacks.
    """

    start: datetime
    end: datetime
    services: tuple[str, ...] = ("checkout", "cart", "catalog")
    profile_types: tuple[str, ...] = (CPU,)
    step: timedelta = timedelta(minutes=10)
    samples_per_profile: float = 60_000.0
    service_samples: Mapping[str, float] = field(default_factory=dict)
    sample_rate_hz: float = 100.0
    dispersion: float = 1.0
    zipf_exponent: float = 1.1
    diurnal_amplitude: float = 0.0
    diurnal_load: float = 0.0
    functions: int = 300
    python_share: float = 0.25
    seed: int = 0
    events: tuple[Event, ...] = ()
    stacks: tuple[Stack, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("fleet start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("fleet end must be after its start")
        if self.step <= timedelta(0):
            raise ValueError(f"step {self.step}: must be positive")
        if not self.services:
            raise ValueError("a fleet needs at least one service")
        if len(set(self.services)) != len(self.services):
            raise ValueError("service names must be unique")
        if self.dispersion < 1.0:
            raise ValueError(f"dispersion {self.dispersion!r}: must be at least 1")
        if self.samples_per_profile <= 0 or any(v <= 0 for v in self.service_samples.values()):
            raise ValueError("samples per profile must be positive")
        if not 0.0 <= self.diurnal_amplitude < 1.0 or not 0.0 <= self.diurnal_load < 1.0:
            raise ValueError("diurnal amplitudes must be in [0, 1)")
        if self.functions < 20:
            raise ValueError(f"functions {self.functions!r}: need at least 20")
        known = set(self.services)
        for event in self.events:
            if event.service not in known:
                raise ValueError(f"event {event!r} names an unknown service {event.service!r}")
            if isinstance(event, StepRegression | TransientSpike) and event.factor < 0:
                raise ValueError(f"event {event!r}: factor must not be negative")
            if isinstance(event, CostShift) and not 0.0 <= event.fraction <= 1.0:
                raise ValueError(f"event {event!r}: fraction must be in [0, 1]")

    @property
    def timestamps(self) -> list[datetime]:
        """The start of every step in ``[start, end)``."""
        out: list[datetime] = []
        t = self.start
        while t < self.end:
            out.append(t)
            t += self.step
        return out

    def samples_for(self, service: str) -> float:
        return float(self.service_samples.get(service, self.samples_per_profile))

    def version_at(self, service: str, when: datetime) -> str | None:
        """The ``version`` label of ``service`` at ``when`` (``None`` without version events)."""
        changes = sorted(
            (e for e in self.events if isinstance(e, VersionChange) and e.service == service),
            key=lambda e: e.at,
        )
        if not changes:
            return None
        version = changes[0].old
        for change in changes:
            if change.at <= when:
                version = change.new
        return version

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FleetSpec:
        """Build a spec from JSON-like data: times as ISO 8601, durations in seconds.

        Events are objects with a ``type`` of ``step_regression``, ``transient_spike``,
        ``cost_shift`` or ``version_change`` and the fields of the matching class.
        """
        values = dict(data)
        for key in ("start", "end"):
            if key in values:
                values[key] = _parse_time(values[key])
        if "step" in values:
            values["step"] = _parse_seconds(values["step"])
        for key in ("services", "profile_types"):
            if key in values:
                values[key] = tuple(values[key])
        if "stacks" in values:
            values["stacks"] = tuple(tuple(s) for s in values["stacks"])
        events = []
        for raw in values.get("events", ()):
            item = dict(raw)
            kind = item.pop("type", None)
            if kind not in _EVENT_TYPES:
                raise ValueError(f"event type {kind!r}: expected one of {sorted(_EVENT_TYPES)}")
            if "at" in item:
                item["at"] = _parse_time(item["at"])
            if "duration" in item:
                item["duration"] = _parse_seconds(item["duration"])
            events.append(_EVENT_TYPES[kind](**item))
        values["events"] = tuple(events)
        return cls(**values)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r}: needs a timezone")
    return parsed


def _parse_seconds(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


# -- stack templates ------------------------------------------------------------------------

_GO_ENTRIES: tuple[Stack, ...] = (
    (
        "net/http.(*conn).serve",
        "net/http.serverHandler.ServeHTTP",
        "net/http.(*ServeMux).ServeHTTP",
        "net/http.HandlerFunc.ServeHTTP",
    ),
    (
        "google.golang.org/grpc.(*Server).serveStreams.func1.1",
        "google.golang.org/grpc.(*Server).handleStream",
        "google.golang.org/grpc.(*Server).processUnaryRPC",
    ),
    ("main.(*Worker).run", "main.(*Worker).processBatch"),
)
_GO_RUNTIME: tuple[Stack, ...] = (
    ("runtime.gcBgMarkWorker", "runtime.systemstack", "runtime.gcDrain", "runtime.scanobject"),
    (
        "runtime.gcBgMarkWorker",
        "runtime.systemstack",
        "runtime.gcDrain",
        "runtime.scanobject",
        "runtime.findObject",
    ),
    (
        "runtime.gcBgMarkWorker",
        "runtime.systemstack",
        "runtime.gcDrain",
        "runtime.greyobject",
    ),
    (
        "runtime.gcBgMarkWorker",
        "runtime.systemstack",
        "runtime.gcDrain",
        "runtime.markroot",
        "runtime.scanstack",
    ),
    ("runtime.mcall", "runtime.park_m", "runtime.schedule", "runtime.findRunnable"),
    (
        "runtime.mcall",
        "runtime.park_m",
        "runtime.schedule",
        "runtime.findRunnable",
        "runtime.netpoll",
        "runtime.epollwait",
    ),
    (
        "runtime.mcall",
        "runtime.park_m",
        "runtime.schedule",
        "runtime.findRunnable",
        "runtime.stealWork",
    ),
    ("runtime.bgsweep", "runtime.sweepone", "runtime.(*sweepLocked).sweep"),
    ("runtime.sysmon", "runtime.usleep"),
)
_GO_LIBRARIES: tuple[Stack, ...] = (
    (
        "encoding/json.Marshal",
        "encoding/json.(*encodeState).marshal",
        "encoding/json.(*encodeState).reflectValue",
        "encoding/json.structEncoder.encode",
        "encoding/json.appendString[...]",
    ),
    (
        "encoding/json.Unmarshal",
        "encoding/json.(*decodeState).unmarshal",
        "encoding/json.(*decodeState).object",
        "encoding/json.(*decodeState).literalStore",
    ),
    (
        "database/sql.(*DB).QueryContext",
        "database/sql.(*DB).query",
        "github.com/jackc/pgx/v5/stdlib.(*Conn).QueryContext",
        "github.com/jackc/pgx/v5.(*Conn).Query",
        "net.(*conn).Read",
        "internal/poll.(*FD).Read",
        "syscall.read",
        "syscall.Syscall",
    ),
    (
        "github.com/redis/go-redis/v9.(*Client).Process",
        "github.com/redis/go-redis/v9.(*baseClient).withConn",
        "net.(*conn).Write",
        "internal/poll.(*FD).Write",
        "syscall.write",
        "syscall.Syscall",
    ),
    (
        "crypto/tls.(*Conn).Write",
        "crypto/tls.(*Conn).writeRecordLocked",
        "crypto/cipher.(*gcmAsm).Seal",
        "crypto/aes.gcmAesEnc",
    ),
    (
        "compress/gzip.(*Writer).Write",
        "compress/flate.(*compressor).write",
        "compress/flate.(*compressor).deflate",
        "compress/flate.(*compressor).findMatch",
    ),
    ("fmt.Sprintf", "fmt.(*pp).doPrintf", "fmt.(*pp).printArg", "fmt.(*fmt).fmtInteger"),
    ("strconv.FormatInt", "strconv.formatBits"),
    (
        "regexp.(*Regexp).MatchString",
        "regexp.(*Regexp).doExecute",
        "regexp.(*Regexp).backtrack",
        "regexp.(*Regexp).tryBacktrack",
    ),
    ("sort.Slice", "sort.pdqsort_func", "sort.insertionSort_func"),
    (
        "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End",
        "go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor).OnEnd",
        "runtime.chansend1",
    ),
    (
        "github.com/prometheus/client_golang/prometheus.(*HistogramVec).WithLabelValues",
        "github.com/prometheus/client_golang/prometheus.(*MetricVec).GetMetricWithLabelValues",
        "github.com/prometheus/client_golang/prometheus.(*MetricVec).hashLabelValues",
    ),
    ("runtime.mapaccess2_faststr", "runtime.aeshashbody"),
    ("runtime.mapassign_faststr", "runtime.growWork_faststr"),
    ("runtime.newobject", "runtime.mallocgc", "runtime.nextFreeFast"),
    (
        "runtime.makeslice",
        "runtime.mallocgc",
        "runtime.(*mcache).nextFree",
        "runtime.(*mcache).refill",
    ),
    ("runtime.growslice", "runtime.mallocgc", "runtime.memclrNoHeapPointers"),
    ("runtime.concatstrings", "runtime.rawstringtmp", "runtime.mallocgc"),
    ("runtime.memmove",),
    ("sync.(*Mutex).Lock", "sync.(*Mutex).lockSlow", "runtime.semacquire1"),
    ("time.Now", "runtime.nanotime"),
    ("context.WithTimeout", "context.WithDeadlineCause", "time.AfterFunc"),
    (
        "google.golang.org/protobuf/proto.MarshalOptions.marshal",
        "google.golang.org/protobuf/internal/impl.(*MessageInfo).marshal",
        "google.golang.org/protobuf/internal/impl.appendStringSliceValidateUTF8",
    ),
    ("bytes.(*Buffer).WriteString", "bytes.(*Buffer).grow", "runtime.memmove"),
    ("io.ReadAll", "bytes.growSlice", "runtime.growslice"),
)
_GO_TYPES = ("Service", "Store", "Repository", "Client", "Cache", "Validator", "Pricing")
_GO_VERBS = ("Get", "List", "Load", "Validate", "Apply", "Compute", "Build", "Encode", "Fetch")
_GO_NOUNS = ("Cart", "Order", "Items", "Price", "Discount", "Stock", "User", "Session", "Rates")

_PY_ENTRIES: tuple[Stack, ...] = (
    (
        "run (gunicorn/arbiter.py)",
        "spawn_worker (gunicorn/arbiter.py)",
        "init_process (gunicorn/workers/base.py)",
        "run (gunicorn/workers/sync.py)",
        "handle (gunicorn/workers/sync.py)",
        "handle_request (gunicorn/workers/sync.py)",
        "__call__ (flask/app.py)",
        "wsgi_app (flask/app.py)",
        "full_dispatch_request (flask/app.py)",
        "dispatch_request (flask/app.py)",
    ),
    (
        "run (celery/worker/worker.py)",
        "start (celery/bootsteps.py)",
        "trace_task (celery/app/trace.py)",
    ),
)
_PY_RUNTIME: tuple[Stack, ...] = (
    ("<module> (gunicorn)", "run (gunicorn/app/base.py)", "sleep (gunicorn/arbiter.py)"),
    ("_bootstrap (threading.py)", "run (threading.py)", "_worker (concurrent/futures/thread.py)"),
)
_PY_LIBRARIES: tuple[Stack, ...] = (
    ("dumps (json/__init__.py)", "encode (json/encoder.py)", "iterencode (json/encoder.py)"),
    ("loads (json/__init__.py)", "decode (json/decoder.py)", "raw_decode (json/decoder.py)"),
    (
        "execute (sqlalchemy/orm/session.py)",
        "_execute_internal (sqlalchemy/orm/session.py)",
        "execute (sqlalchemy/engine/base.py)",
        "_execute_context (sqlalchemy/engine/base.py)",
        "do_execute (sqlalchemy/engine/default.py)",
        "execute (psycopg/cursor.py)",
        "wait (psycopg/waiting.py)",
    ),
    (
        "all (sqlalchemy/orm/query.py)",
        "_iter (sqlalchemy/orm/query.py)",
        "instances (sqlalchemy/orm/loading.py)",
        "_instance (sqlalchemy/orm/loading.py)",
    ),
    (
        "render (jinja2/environment.py)",
        "root (templates/page.html)",
        "escape (markupsafe/__init__.py)",
    ),
    (
        "get (requests/api.py)",
        "request (requests/sessions.py)",
        "send (requests/adapters.py)",
        "urlopen (urllib3/connectionpool.py)",
        "_make_request (urllib3/connectionpool.py)",
        "getresponse (http/client.py)",
        "readinto (socket.py)",
    ),
    ("model_validate (pydantic/main.py)",),
    ("sub (re/__init__.py)", "_compile (re/__init__.py)"),
    (
        "info (logging/__init__.py)",
        "_log (logging/__init__.py)",
        "handle (logging/__init__.py)",
        "emit (logging/__init__.py)",
        "format (logging/__init__.py)",
    ),
    ("deepcopy (copy.py)", "_deepcopy_dict (copy.py)", "_reconstruct (copy.py)"),
    ("strftime (datetime.py)",),
    ("sha256 (hashlib.py)",),
)
_PY_VERBS = ("get", "list", "load", "validate", "apply", "compute", "build", "serialize")
_PY_NOUNS = ("cart", "order", "items", "price", "discount", "stock", "user", "session")


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-"))


def _build_tree(spec: FleetSpec, service: str) -> list[Stack]:
    """The service's leaf stacks (root-first), deterministic in (seed, service)."""
    rng = random.Random(f"{spec.seed}:{service}:tree")
    python = rng.random() < spec.python_share
    stacks: dict[Stack, None] = {}
    functions: set[str] = set()

    def add(stack: Stack) -> None:
        if stack not in stacks:
            stacks[stack] = None
            functions.update(stack)

    for template in _PY_RUNTIME if python else _GO_RUNTIME:
        add(template)
    entries = _PY_ENTRIES if python else _GO_ENTRIES
    libraries = _PY_LIBRARIES if python else _GO_LIBRARIES
    module = f"app/{service.replace('-', '_')}"
    go_pkg = f"github.com/acme/{service}/internal"
    used: set[str] = set()

    def fresh(make: Callable[[], str]) -> str:
        for _ in range(50):
            name = make()
            if name not in used and name not in functions:
                used.add(name)
                return name
        name = f"{make()}{len(used)}"
        used.add(name)
        return name

    def handler_name() -> str:
        noun = rng.choice(_PY_NOUNS if python else _GO_NOUNS)
        if python:
            return f"{rng.choice(_PY_VERBS)}_{noun} ({module}/views.py)"
        return f"main.handle{rng.choice(_GO_VERBS)}{_camel(service)}{noun}"

    def app_name() -> str:
        if python:
            area = rng.choice(("services", "models", "pricing", "repository"))
            return f"{rng.choice(_PY_VERBS)}_{rng.choice(_PY_NOUNS)} ({module}/{area}.py)"
        area = rng.choice(("cart", "order", "pricing", "storage", "auth"))
        return (
            f"{go_pkg}/{area}.(*{rng.choice(_GO_TYPES)}).{rng.choice(_GO_VERBS)}"
            f"{rng.choice(_GO_NOUNS)}"
        )

    def library_calls(prefix: Stack, count: int) -> None:
        for _ in range(count):
            chain = rng.choice(libraries)
            depth = rng.randint(1, len(chain))
            add(prefix + chain[:depth])
            if (
                depth == len(chain)
                and not python
                and not chain[-1].startswith("runtime.")
                and "runtime.mallocgc" not in chain
                and rng.random() < 0.2
            ):
                add(prefix + chain + ("runtime.mallocgc",))

    def app_call(prefix: Stack, depth: int) -> None:
        name = fresh(app_name)
        here = (*prefix, name)
        add(here)
        library_calls(here, rng.randint(1, 2))
        if depth < 3 and rng.random() < 0.3:
            app_call(here, depth + 1)

    while len(functions) < spec.functions:
        entry = rng.choice(entries)
        handler = fresh(handler_name)
        prefix = (*entry, handler)
        add(prefix)
        for _ in range(rng.randint(2, 5)):
            app_call(prefix, 1)
    for extra in spec.stacks:
        if extra:
            add(tuple(extra))
    return list(stacks)


@dataclass(slots=True)
class _Stream:
    """Everything needed to draw the profiles of one (service, profile type)."""

    service: str
    profile_type: str
    stacks: list[Stack]
    weights: list[float]
    groups: list[int]
    phases: list[float]
    units_per_sample: float
    samples: float
    rng: random.Random
    modifiers: list[tuple[datetime, datetime | None, list[int], float]]
    shifts: list[tuple[datetime, list[tuple[int, int]], float]]
    type_name: str
    weighted_groups: list[tuple[float, int]] = field(default_factory=list)
    group_weights: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.weighted_groups = list(zip(self.weights, self.groups, strict=True))
        self.group_weights = [0.0] * _GROUPS
        for weight, group in self.weighted_groups:
            self.group_weights[group] += weight


def _self_indices(stacks: Sequence[Stack], function: str) -> list[int]:
    return [i for i, s in enumerate(stacks) if s[-1] == function]


def _total_indices(stacks: Sequence[Stack], function: str) -> list[int]:
    return [i for i, s in enumerate(stacks) if function in s]


def _unknown_function(service: str, function: str, stacks: Sequence[Stack]) -> ValueError:
    leaves = sorted({s[-1] for s in stacks})[:5]
    return ValueError(
        f"service {service!r} has no function {function!r} (examples: {', '.join(leaves)}; "
        "see expected_shares)"
    )


def _stream(spec: FleetSpec, service: str, profile_type: str, base: list[Stack]) -> _Stream:
    stacks = list(base)
    modifiers: list[tuple[datetime, datetime | None, list[int], float]] = []
    shifts: list[tuple[datetime, list[tuple[int, int]], float]] = []
    for event in spec.events:
        if event.service != service or isinstance(event, VersionChange):
            continue
        if isinstance(event, CostShift):
            sources = _self_indices(stacks, event.from_fn)
            if not sources:
                raise _unknown_function(service, event.from_fn, stacks)
            pairs: list[tuple[int, int]] = []
            for index in sources:
                target = (*stacks[index][:-1], event.to_fn)
                if target not in stacks:
                    stacks.append(target)
                pairs.append((index, stacks.index(target)))
            shifts.append((event.at, pairs, event.fraction))
            continue
        pick = _self_indices if event.kind == "self" else _total_indices
        indices = pick(stacks, event.function)
        if not indices:
            raise _unknown_function(service, event.function, stacks)
        end = event.at + event.duration if isinstance(event, TransientSpike) else None
        modifiers.append((event.at, end, indices, event.factor))
    rng = random.Random(f"{spec.seed}:{service}:{profile_type}:weights")
    real = len(base)
    ranks = list(range(1, real + 1))
    rng.shuffle(ranks)
    weights = [1.0 / r**spec.zipf_exponent for r in ranks]
    weights.extend(0.0 for _ in range(len(stacks) - real))
    groups = [rng.randrange(_GROUPS) for _ in stacks]
    phases = [2.0 * math.pi * (g / _GROUPS + rng.random() * 0.1) for g in range(_GROUPS)]
    model = sample_model(profile_type, spec.sample_rate_hz)
    if model.poisson:
        units = model.units_per_sample
    else:
        units = {"bytes": 524288.0}.get(model.sample_unit, 1.0)
    return _Stream(
        service=service,
        profile_type=profile_type,
        stacks=stacks,
        weights=weights,
        groups=groups,
        phases=phases,
        units_per_sample=units,
        samples=spec.samples_for(service),
        rng=random.Random(f"{spec.seed}:{service}:{profile_type}:noise"),
        modifiers=modifiers,
        shifts=shifts,
        type_name=profile_type.split(":", 1)[0],
    )


# -- drawing counts -------------------------------------------------------------------------

_GRID = 4096
_EDGE = 16
_QUANTILES = [norm_ppf(i / _GRID) if 0 < i < _GRID else 0.0 for i in range(_GRID + 1)]


def _normal(rng: random.Random) -> float:
    """A standard normal draw: interpolated quantile table in the body, exact in the tails."""
    u = rng.random()
    x = u * _GRID
    i = int(x)
    if i < _EDGE or i >= _GRID - _EDGE:
        if u <= 0.0:
            u = 1e-300
        return norm_ppf(u)
    low = _QUANTILES[i]
    return low + (_QUANTILES[i + 1] - low) * (x - i)


def _skewed(rng: random.Random, mean: float, variance: float, skew: float) -> int:
    """A count with the given mean, variance and skewness (one-term Cornish-Fisher)."""
    z = _normal(rng)
    value = mean + math.sqrt(variance) * (z + skew * (z * z - 1.0) / 6.0)
    return int(value + 0.5) if value > 0.0 else 0


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam >= 30.0:
        return _skewed(rng, lam, lam, 1.0 / math.sqrt(lam))
    u = rng.random()
    p = math.exp(-lam)
    cumulative = p
    k = 0
    while u > cumulative and k < 1000:
        k += 1
        p *= lam / k
        cumulative += p
    return k


def _gamma(rng: random.Random, shape: float, scale: float) -> float:
    if shape >= 5.0:
        # Wilson-Hilferty: the cube root of a gamma variable is nearly normal.
        c = 1.0 / (9.0 * shape)
        root = 1.0 - c + _normal(rng) * math.sqrt(c)
        return shape * scale * root**3 if root > 0.0 else 0.0
    return rng.gammavariate(shape, scale)


def _draw(rng: random.Random, mean: float, phi: float) -> int:
    """A Dirichlet-multinomial-like count: mean ``mean``, variance ``phi * mean``."""
    if mean <= 0.0:
        return 0
    if phi <= 1.0:
        return _poisson(rng, mean)
    variance = phi * mean
    skew = (2.0 * phi - 1.0) / math.sqrt(variance)
    if mean >= 30.0 and skew <= 0.5:
        return _skewed(rng, mean, variance, skew)
    lam = _gamma(rng, mean / (phi - 1.0), phi - 1.0)
    return _poisson(rng, lam)


_POOL_SIZE = 1 << 16
_POOL: list[float] = []


def _normal_pool() -> list[float]:
    """Standard normal quantiles at ``(k + 0.5) / size``, shuffled once with a fixed seed.

    Drawing a window of this pool at a random offset gives normal variates whose marginal
    distribution is exact to 1/size (tails reach 4.3 sd); the fast path draws its noise
    this way, which is several times quicker than one ``random()`` per stack. The first
    ``_POOL_SIZE`` entries are repeated at the end so any offset can be sliced.
    """
    if not _POOL:
        values = [norm_ppf((k + 0.5) / _POOL_SIZE) for k in range(_POOL_SIZE)]
        random.Random("pyrowatch-fleet-normal-pool").shuffle(values)
        _POOL.extend(values)
        _POOL.extend(values)
    return _POOL


def _profile(spec: FleetSpec, stream: _Stream, when: datetime) -> dict[Stack, int]:
    seconds = when.timestamp()
    day = 2.0 * math.pi * (seconds % _DAY_SECONDS) / _DAY_SECONDS
    amplitude = spec.diurnal_amplitude
    drift = [1.0 + amplitude * math.sin(day + phase) for phase in stream.phases]
    load = 1.0 + spec.diurnal_load * math.sin(day - 0.5 * math.pi)
    scale = (
        stream.samples * load / sum(d * w for d, w in zip(drift, stream.group_weights, strict=True))
    )
    factors = [d * scale for d in drift]
    means = [w * factors[g] for w, g in stream.weighted_groups]
    for start, end, indices, factor in stream.modifiers:
        if start <= when and (end is None or when < end):
            for i in indices:
                means[i] *= factor
    for start, pairs, fraction in stream.shifts:
        if start <= when:
            for source, target in pairs:
                moved = means[source] * fraction
                means[source] -= moved
                means[target] += moved
    rng = stream.rng
    phi = spec.dispersion
    # Means at or above ``cut`` take the fast path: a pooled normal variate with a one-term
    # Cornish-Fisher correction for the skewness (2 phi - 1) / sd of the gamma-Poisson
    # count, which stays at most 0.8 there. Smaller means are drawn exactly afterwards.
    cut = max(10.0, (2.0 * phi - 1.0) ** 2 / (0.64 * phi))
    bend = (2.0 * phi - 1.0) / 6.0
    pool = _normal_pool()
    offset = rng.randrange(_POOL_SIZE)
    noise = pool[offset : offset + len(means)]
    sqrt = math.sqrt
    unit = stream.units_per_sample
    whole = int(unit) if unit == int(unit) else 0
    stacks = stream.stacks
    out: dict[Stack, int]
    if whole:
        out = {
            stack: count * whole
            for stack, m, z in zip(stacks, means, noise, strict=True)
            if (count := int(m + sqrt(phi * m) * z + bend * (z * z - 1.0) + 0.5)) > 0
        }
    else:
        out = {
            stack: int(count * unit + 0.5)
            for stack, m, z in zip(stacks, means, noise, strict=True)
            if (count := int(m + sqrt(phi * m) * z + bend * (z * z - 1.0) + 0.5)) > 0
        }
    for i in [i for i, m in enumerate(means) if m < cut]:
        count = _draw(rng, means[i], phi)
        if count > 0:
            out[stacks[i]] = count * whole if whole else int(count * unit + 0.5)
        else:
            out.pop(stacks[i], None)
    return out


# -- public API -----------------------------------------------------------------------------


def service_stacks(spec: FleetSpec, service: str) -> tuple[Stack, ...]:
    """The leaf stacks (root-first) of ``service``'s call tree, before events."""
    if service not in spec.services:
        raise ValueError(f"unknown service {service!r}; the fleet has {', '.join(spec.services)}")
    return tuple(_build_tree(spec, service))


def expected_shares(
    spec: FleetSpec,
    service: str,
    profile_type: str = CPU,
    kind: Literal["self", "total"] = "self",
) -> dict[str, float]:
    """Each function's expected share of ``service``'s profile at average mix, before events."""
    stream = _stream(spec, service, profile_type, _build_tree(spec, service))
    grand = sum(stream.weights)
    shares: dict[str, float] = {}
    for stack, weight in zip(stream.stacks, stream.weights, strict=True):
        if weight <= 0.0:
            continue
        names = (stack[-1],) if kind == "self" else tuple(dict.fromkeys(stack))
        for name in names:
            shares[name] = shares.get(name, 0.0) + weight / grand
    return shares


def generate(spec: FleetSpec) -> Iterator[ProfileRecord]:
    """Every profile of the fleet, in time order (then service, then profile type)."""
    streams: list[_Stream] = []
    for service in spec.services:
        base = _build_tree(spec, service)
        for profile_type in spec.profile_types:
            streams.append(_stream(spec, service, profile_type, base))
    step_ms = int(spec.step.total_seconds() * 1000)
    versions = {
        s: [e for e in spec.events if isinstance(e, VersionChange) and e.service == s]
        for s in spec.services
    }
    for when in spec.timestamps:
        timestamp_ms = int(when.timestamp() * 1000)
        for stream in streams:
            labels = {
                **spec.labels,
                "service_name": stream.service,
                "__name__": stream.type_name,
            }
            if versions[stream.service]:
                version = spec.version_at(stream.service, when)
                if version is not None:
                    labels["version"] = version
            yield ProfileRecord(
                labels=labels,
                profile_type=stream.profile_type,
                timestamp_ms=timestamp_ms,
                stacks=_profile(spec, stream, when),
                duration_ms=step_ms,
            )


class ProfileSink(Protocol):
    """Anything with the sandbox store's ``add``."""

    def add(
        self,
        labels: Mapping[str, str],
        profile_type: str,
        timestamp_ms: int,
        stacks: Mapping[Stack, int],
    ) -> Any: ...


def load_fleet(store: ProfileSink, spec: FleetSpec) -> int:
    """Add every generated profile to ``store``; returns how many were generated.

    Uses the store's batched ``add_many`` when it has one, ``add`` otherwise.
    """
    count = 0

    def items() -> Iterator[tuple[Mapping[str, str], str, int, Mapping[Stack, int]]]:
        nonlocal count
        for record in generate(spec):
            count += 1
            yield record.labels, record.profile_type, record.timestamp_ms, record.stacks

    add_many = getattr(store, "add_many", None)
    if callable(add_many):
        add_many(items())
        return count
    for labels, profile_type, timestamp_ms, stacks in items():
        store.add(labels, profile_type, timestamp_ms, stacks)
    return count
