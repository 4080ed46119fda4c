"""What the benchmark injects, where and when: fleet specs and their planned changes.

Time layout (hour indices from :data:`START`, one profile per hour stamped at half past so
every window ``[t - 1h, t]`` holds exactly one):

- days 0-6 are clean; they are the -7d baselines of days 7-13;
- **A/A services** carry no change and are evaluated at every hour of days 7-13
  (168 hourly runs, one service-week each);
- **injection services** change only on days 7, 9, 11 and 13, so the -1d baselines
  (days 6, 8, 10, 12) and the -7d baselines (days 0, 2, 4, 6) stay clean. Each of those
  days has six four-hour slots: W0 (clean, the previous window of the first run), then
  W1-W3 under the change. Runs end at W1, W2 and W3 (time to detect 1, 2 or 3 windows).

Slot roles in every injection service, each day: slot 0 is a step aligned with a
``version`` label change (the finding must name the old and new version); slot 3 is a
one-window transient spike (must be suppressed); slot 5 is a cost shift between sibling
leaves (must be labelled, not alerted); slots 1, 2 and 4 are steps from the recall grid
(delta x share bin x self/total). A "step" lasts the three evaluated windows (a generator
``TransientSpike`` three hours long), which is the same as a persistent step for every
window the benchmark looks at and keeps the next slot's windows clean. Cost shifts
persist (the generator has no end for them), so each day's shift uses a pair of
siblings under a parent no earlier shift touched, and later steps avoid both functions;
the -1d baseline then already holds the earlier shifts and the -7d one does not, which
the intersection of both baselines absorbs.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from watcher.sandbox.fleet import (
    CPU,
    CostShift,
    Event,
    FleetSpec,
    TransientSpike,
    VersionChange,
    expected_shares,
    service_stacks,
)

Kind = Literal["self", "total"]
Scenario = Literal["step", "transient", "cost_shift"]

#: A Monday, far enough in the past for any clock.
START = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DAYS = 14
#: Profiles are stamped this far into their hour, so window edges never hold a profile.
STAMP_OFFSET = timedelta(minutes=30)
INJECTION_DAYS = (7, 9, 11, 13)
SLOT_HOURS = 4
SLOTS_PER_DAY = 24 // SLOT_HOURS
VERSION_SLOT = 0
TRANSIENT_SLOT = 3
SHIFT_SLOT = 5
#: Windows evaluated after each onset: steps and cost shifts W1-W3, transients W1-W2.
STEP_WINDOWS = 3
TRANSIENT_WINDOWS = 2
#: The first and last hour index (current window start) of the A/A runs: days 7-13.
AA_HOURS = tuple(range(7 * 24, 14 * 24))
HOURS_PER_WEEK = 168

SIZES: tuple[float, ...] = (20_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)
PHIS: tuple[float, ...] = (1.0, 2.0, 4.0)
DELTAS: tuple[float, ...] = (0.02, 0.05, 0.10, 0.20, 0.50, 1.00)
#: Smaller steps added where the theoretical limit lies below the smallest delta (+2 %
#: and less at 10M samples for functions from 1 %), so MDE80 is measured there, not
#: extrapolated.
FINE_DELTAS: tuple[float, ...] = (0.005, 0.01)
FINE_MIN_SIZE = 10_000_000.0
FINE_BINS: tuple[str, ...] = ("1-5%", ">5%")
#: Share bins: (label, lower bound inclusive, upper bound exclusive).
BINS: tuple[tuple[str, float, float], ...] = (
    ("0.1-0.3%", 0.001, 0.003),
    ("0.3-1%", 0.003, 0.01),
    ("1-5%", 0.01, 0.05),
    (">5%", 0.05, 1.0),
)
KINDS: tuple[Kind, ...] = ("self", "total")
#: Transient spikes: one window, large enough to be significant on its own.
TRANSIENT_DELTAS = (0.5, 1.0)
TRANSIENT_BINS = ("1-5%", ">5%")
#: Cost shifts move this fraction of the source's self work to a sibling leaf.
SHIFT_FRACTION = 0.5

#: Shape of the synthetic services (the generator's defaults, plus drift).
DIURNAL_AMPLITUDE = 0.1
DIURNAL_LOAD = 0.2
FUNCTIONS = 300
SAMPLE_RATE_HZ = 100.0
#: Real stacks added to every service (the heaviest of each shared CPU profile).
REAL_STACKS_PER_FILE = 25
REAL_STACKS_MAX = 120


@dataclass(frozen=True, slots=True)
class Injection:
    """One planned change and how to judge the findings it causes.

    ``function`` is the function whose share rises (for a cost shift, the sibling that
    receives the work; ``source`` gives it). ``credit`` are the names a finding must carry
    (as its function or among its callers) to count as detecting the change; findings on
    ``related`` functions are caused by the change and never count as false alerts in a
    step's runs. ``onset_hour`` is the hour index where W1 starts.
    """

    ident: str
    service: str
    scenario: Scenario
    function: str
    kind: Kind
    delta: float
    share: float
    share_bin: str
    onset_hour: int
    windows: int
    credit: frozenset[str]
    related: frozenset[str]
    version: tuple[str, str] | None = None
    source: str | None = None
    source_share: float = 0.0


@dataclass(frozen=True, slots=True)
class Job:
    """A fleet to generate, serve and evaluate in one worker."""

    name: str
    size: float
    phi: float
    spec: FleetSpec
    injections: tuple[Injection, ...] = ()
    aa_services: tuple[str, ...] = ()
    aa_hours: tuple[int, ...] = AA_HOURS

    @property
    def cost(self) -> float:
        """Rough relative run time (windows fetched), for scheduling."""
        windows = sum(4 + 2 * i.windows for i in self.injections)
        return windows + len(self.aa_services) * 2 * HOURS_PER_WEEK


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one benchmark run evaluates."""

    jobs: tuple[Job, ...]
    sizes: tuple[float, ...]
    phis: tuple[float, ...]
    deltas: tuple[float, ...]
    trials: int
    real_stacks: int
    real_stack_files: tuple[str, ...] = field(default_factory=tuple)


def hour_time(hour: int) -> datetime:
    """The start of hour index ``hour``."""
    return START + hour * HOUR


def share_bin(share: float) -> str | None:
    for label, low, high in BINS:
        if low <= share < high:
            return label
    return None


# -- real stacks ------------------------------------------------------------------------------


def shared_testdata() -> Path | None:
    """The shared Pyroscope test data folder, found the way the test suite finds it."""
    repo = Path(__file__).resolve().parents[2]
    shared = Path(os.environ.get("PYROWATCH_SHARED_DIR", repo.parent / "shared"))
    folder = shared / "testdata" / "pyroscope"
    return folder if folder.is_dir() else None


_CPU_TYPES = ("cpu", "samples", "sample", "wall")


def real_stacks(
    folder: Path | None = None,
    *,
    per_file: int = REAL_STACKS_PER_FILE,
    limit: int = REAL_STACKS_MAX,
) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """Root-first stacks from the shared CPU/wall pprof files, heaviest first per file.

    Returns ``(stacks, files used)``; both empty when the folder is absent. Files that do not
    parse, or hold no CPU-like sample type, are skipped.
    """
    from watcher.errors import WatcherError
    from watcher.pprof import parse_pprof

    folder = folder if folder is not None else shared_testdata()
    if folder is None:
        return (), ()
    chosen: dict[tuple[str, ...], None] = {}
    used: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix in (".json", ".yaml", ".txt", ".go", ".proto", ".md", ".jfr"):
            continue
        try:
            profile = parse_pprof(path.read_bytes())
        except (WatcherError, ValueError, OSError):
            continue
        types = [t.lower() for t, _unit in profile.sample_types]
        index = next((i for i, t in enumerate(types) if t == "cpu"), None)
        if index is None:
            index = next((i for i, t in enumerate(types) if t in _CPU_TYPES), None)
        if index is None:
            continue
        stacks = profile.stacks(index)
        ranked = sorted(stacks.items(), key=lambda item: (-item[1], item[0]))
        taken = 0
        for stack, _value in ranked:
            if taken >= per_file or len(chosen) >= limit:
                break
            if not stack or "other" in stack or stack in chosen:
                continue
            chosen[tuple(stack)] = None
            taken += 1
        if taken:
            used.append(path.relative_to(folder).as_posix())
        if len(chosen) >= limit:
            break
    return tuple(chosen), tuple(used)


# -- planning ---------------------------------------------------------------------------------


def base_spec(
    size: float,
    phi: float,
    seed: int,
    services: Sequence[str],
    stacks: Sequence[tuple[str, ...]] = (),
    events: Iterable[Event] = (),
) -> FleetSpec:
    """The fleet every job shares: 14 days, hourly profiles, drift, the given noise and size."""
    return FleetSpec(
        start=START + STAMP_OFFSET,
        end=START + DAYS * DAY,
        services=tuple(services),
        profile_types=(CPU,),
        step=HOUR,
        samples_per_profile=size,
        sample_rate_hz=SAMPLE_RATE_HZ,
        dispersion=phi,
        diurnal_amplitude=DIURNAL_AMPLITUDE,
        diurnal_load=DIURNAL_LOAD,
        functions=FUNCTIONS,
        seed=seed,
        events=tuple(events),
        stacks=tuple(stacks),
    )


@dataclass(slots=True)
class _Service:
    """Shares and call graph of one service, for choosing targets."""

    name: str
    self_shares: dict[str, float]
    total_shares: dict[str, float]
    stacks: tuple[tuple[str, ...], ...]
    ancestors: dict[str, set[str]]
    descendants: dict[str, set[str]]

    @classmethod
    def of(cls, spec: FleetSpec, name: str) -> _Service:
        stacks = service_stacks(spec, name)
        ancestors: dict[str, set[str]] = {}
        descendants: dict[str, set[str]] = {}
        for stack in stacks:
            for i, frame in enumerate(stack):
                ancestors.setdefault(frame, set()).update(f for f in stack[:i] if f != frame)
                descendants.setdefault(frame, set()).update(f for f in stack[i + 1 :] if f != frame)
        return cls(
            name,
            expected_shares(spec, name, kind="self"),
            expected_shares(spec, name, kind="total"),
            stacks,
            ancestors,
            descendants,
        )

    def candidates(self, label: str, kind: Kind, avoid: Collection[str] = ()) -> list[str]:
        _, low, high = next(b for b in BINS if b[0] == label)
        out = []
        if kind == "self":
            for name, share in self.self_shares.items():
                if low <= share < high and name not in avoid:
                    out.append(name)
        else:
            for name, share in self.total_shares.items():
                # A total regression needs real callees: at least a third below the frame.
                if (
                    low <= share < high
                    and self.self_shares.get(name, 0.0) <= share * 2 / 3
                    and name not in avoid
                ):
                    out.append(name)
        return sorted(out)

    def credit(self, function: str, kind: Kind) -> frozenset[str]:
        if kind == "self":
            return frozenset({function})
        return frozenset({function} | self.descendants.get(function, set()))

    def related(self, function: str, kind: Kind) -> frozenset[str]:
        return self.credit(function, kind) | frozenset(self.ancestors.get(function, set()))

    def parent(self, leaf: str) -> tuple[str, ...]:
        """The caller path of the one stack ``leaf`` ends (see :meth:`sibling_pairs`)."""
        return next(s[:-1] for s in self.stacks if s[-1] == leaf)

    def sibling_pairs(self) -> list[tuple[str, str]]:
        """(source, receiver) sibling leaves under one parent, each the leaf of one stack."""
        by_leaf: dict[str, list[tuple[str, ...]]] = {}
        for stack in self.stacks:
            by_leaf.setdefault(stack[-1], []).append(stack)
        pairs = []
        for leaf, own in sorted(by_leaf.items()):
            if len(own) != 1 or not 0.003 <= self.self_shares.get(leaf, 0.0) < 0.1:
                continue
            parent = own[0][:-1]
            if not parent:
                continue
            for stack in self.stacks:
                sibling = stack[-1]
                if (
                    stack[:-1] == parent
                    and sibling != leaf
                    and len(by_leaf[sibling]) == 1
                    and 0.001 <= self.self_shares.get(sibling, 0.0) < 0.05
                ):
                    pairs.append((leaf, sibling))
        return pairs


def _slots() -> list[tuple[int, int, int]]:
    """(day index, day, slot) of every injection slot, in time order."""
    return [(d, day, k) for d, day in enumerate(INJECTION_DAYS) for k in range(SLOTS_PER_DAY)]


def _onset(day: int, slot: int) -> int:
    """Hour index where W1 of ``slot`` on ``day`` starts (W0 is the hour before)."""
    return day * 24 + slot * SLOT_HOURS + 1


STEP_SLOTS_PER_SERVICE = sum(1 for _, _, k in _slots() if k not in (TRANSIENT_SLOT, SHIFT_SLOT))


def plan_config(
    size: float,
    phi: float,
    *,
    seed: int,
    trials: int,
    aa_services: int,
    stacks: Sequence[tuple[str, ...]] = (),
    deltas: Sequence[float] = DELTAS,
    bins: Sequence[str] = tuple(b[0] for b in BINS),
    kinds: Sequence[Kind] = KINDS,
    services_per_job: int = 4,
    with_side_scenarios: bool = True,
    fine_deltas: Sequence[float] = (),
) -> list[Job]:
    """The jobs of one (samples per window, dispersion) configuration.

    ``trials`` step injections per (delta, share bin, kind) cell, spread over as many
    injection services as needed; ``aa_services`` A/A services of one week each.
    ``fine_deltas`` are extra deltas for the :data:`FINE_BINS` only.
    """
    tag = f"{int(size)}-phi{phi:g}"
    rng = random.Random(f"plan:{seed}:{tag}")
    cells = [(d, b, k) for d in deltas for b in bins for k in kinds for _ in range(trials)]
    cells += [
        (d, b, k)
        for d in fine_deltas
        for b in bins
        if b in FINE_BINS
        for k in kinds
        for _ in range(trials)
    ]
    rng.shuffle(cells)
    slots = _slots()
    per_service = STEP_SLOTS_PER_SERVICE if with_side_scenarios else len(slots)
    count = max(1, math.ceil(len(cells) / per_service)) if cells else 0
    names = [f"inj-{tag}-{i:03d}" for i in range(count)]
    probe = base_spec(size, phi, seed, names or ["probe"], stacks)
    injections: list[Injection] = []
    events: dict[str, list[Event]] = {n: [] for n in names}
    queue = list(cells)
    for name in names:
        service = _Service.of(probe, name)
        version = 1
        avoid: set[str] = set()  # functions of earlier cost shifts: no steps on them
        shifted_parents: set[tuple[str, ...]] = set()
        for _, day, k in slots:
            onset = _onset(day, k)
            at = hour_time(onset)
            ident = f"{name}/d{day}s{k}"
            if with_side_scenarios and k == SHIFT_SLOT:
                pairs = [
                    (a, b)
                    for a, b in service.sibling_pairs()
                    if not {a, b} & avoid and service.parent(a) not in shifted_parents
                ]
                if not pairs:
                    continue
                source, receiver = rng.choice(pairs)
                avoid |= {source, receiver}
                shifted_parents.add(service.parent(source))
                share = service.self_shares[receiver]
                events[name].append(CostShift(name, source, receiver, SHIFT_FRACTION, at))
                injections.append(
                    Injection(
                        ident=ident,
                        service=name,
                        scenario="cost_shift",
                        function=receiver,
                        kind="self",
                        delta=SHIFT_FRACTION,
                        share=share,
                        share_bin=share_bin(share) or "<0.1%",
                        onset_hour=onset,
                        windows=STEP_WINDOWS,
                        credit=frozenset({receiver}),
                        related=service.related(receiver, "self") | service.related(source, "self"),
                        source=source,
                        source_share=service.self_shares[source],
                    )
                )
                continue
            if with_side_scenarios and k == TRANSIENT_SLOT:
                label = rng.choice(TRANSIENT_BINS)
                options = service.candidates(label, "self", avoid)
                if not options:
                    continue
                function = rng.choice(options)
                delta = rng.choice(TRANSIENT_DELTAS)
                events[name].append(TransientSpike(name, function, 1.0 + delta, at, HOUR, "self"))
                injections.append(
                    Injection(
                        ident=ident,
                        service=name,
                        scenario="transient",
                        function=function,
                        kind="self",
                        delta=delta,
                        share=service.self_shares[function],
                        share_bin=label,
                        onset_hour=onset,
                        windows=TRANSIENT_WINDOWS,
                        credit=service.credit(function, "self"),
                        related=service.related(function, "self"),
                    )
                )
                continue
            if not queue:
                continue
            # The next cell this service can host (every service has every bin in practice).
            pick = next(
                (i for i, (_, b, kd) in enumerate(queue) if service.candidates(b, kd, avoid)),
                None,
            )
            if pick is None:
                continue
            delta, label, kind = queue.pop(pick)
            function = rng.choice(service.candidates(label, kind, avoid))
            share = (service.self_shares if kind == "self" else service.total_shares)[function]
            duration = STEP_WINDOWS * HOUR
            events[name].append(TransientSpike(name, function, 1.0 + delta, at, duration, kind))
            change: tuple[str, str] | None = None
            if with_side_scenarios and k == VERSION_SLOT:
                change = (f"v{version}", f"v{version + 1}")
                version += 1
                events[name].append(VersionChange(name, change[0], change[1], at))
            injections.append(
                Injection(
                    ident=ident,
                    service=name,
                    scenario="step",
                    function=function,
                    kind=kind,
                    delta=delta,
                    share=share,
                    share_bin=label,
                    onset_hour=onset,
                    windows=STEP_WINDOWS,
                    credit=service.credit(function, kind),
                    related=service.related(function, kind),
                    version=change,
                )
            )
    jobs: list[Job] = []
    for start in range(0, len(names), services_per_job):
        chunk = names[start : start + services_per_job]
        chunk_events = [e for n in chunk for e in events[n]]
        jobs.append(
            Job(
                name=f"{tag}/inject-{start // services_per_job}",
                size=size,
                phi=phi,
                spec=base_spec(size, phi, seed, chunk, stacks, chunk_events),
                injections=tuple(i for i in injections if i.service in chunk),
            )
        )
    for i in range(aa_services):
        name = f"aa-{tag}-{i:02d}"
        jobs.append(
            Job(
                name=f"{tag}/aa-{i}",
                size=size,
                phi=phi,
                spec=base_spec(size, phi, seed, [name], stacks),
                aa_services=(name,),
            )
        )
    return jobs


def plan(
    *,
    sizes: Sequence[float] = SIZES,
    phis: Sequence[float] = PHIS,
    deltas: Sequence[float] = DELTAS,
    trials: int = 10,
    aa_services: int = 2,
    seed: int = 20260302,
    use_real_stacks: bool = True,
    bins: Sequence[str] = tuple(b[0] for b in BINS),
    kinds: Sequence[Kind] = KINDS,
    aa_hours: Sequence[int] = AA_HOURS,
    services_per_job: int = 4,
    fine_deltas: Sequence[float] = FINE_DELTAS,
) -> Plan:
    """The benchmark plan: every (size, dispersion) configuration.

    A configuration's fleet seed depends only on ``seed``, its size and its dispersion, so
    a smaller plan reproduces the same services as the full one. From
    :data:`FINE_MIN_SIZE` samples up, ``fine_deltas`` are injected too (share bins from
    1 %).
    """
    stacks, files = real_stacks() if use_real_stacks else ((), ())
    jobs: list[Job] = []
    for phi in phis:
        for size in sizes:
            config_seed = seed + round(phi * 10) * 1000 + round(math.log10(size) * 10)
            for job in plan_config(
                size,
                phi,
                seed=config_seed,
                trials=trials,
                aa_services=aa_services,
                stacks=stacks,
                deltas=deltas,
                bins=bins,
                kinds=kinds,
                services_per_job=services_per_job,
                fine_deltas=fine_deltas if size >= FINE_MIN_SIZE else (),
            ):
                jobs.append(job if not job.aa_services else replace(job, aa_hours=tuple(aa_hours)))
    return Plan(
        jobs=tuple(jobs),
        sizes=tuple(sizes),
        phis=tuple(phis),
        deltas=tuple(
            sorted({*deltas, *(fine_deltas if any(s >= FINE_MIN_SIZE for s in sizes) else ())})
        ),
        trials=trials,
        real_stacks=len(stacks),
        real_stack_files=files,
    )
