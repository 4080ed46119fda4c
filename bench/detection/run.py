"""Run the detection quality benchmark and print its report.

Usage (from the repository root)::

    .venv/bin/python -m bench.detection            # the full benchmark
    .venv/bin/python -m bench.detection --quick    # a few minutes: fewer sizes and trials
    .venv/bin/python bench/detection/run.py --trials 4 --jobs 2 --markdown report.md

Every number comes from the project's own detection code running over profiles the
sandbox serves over HTTP; see :mod:`bench.detection` for the method. Fixed seeds: the same
options give the same numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.detection import corpus, harness, metrics
from watcher.analysis.detect import DetectionThresholds


def execute(
    plan: corpus.Plan,
    jobs: int = 1,
    *,
    progress: bool = False,
    previous_baselines: bool = True,
    configs: Mapping[str, DetectionThresholds] = harness.CONFIGS,
) -> metrics.Results:
    """Run every job of ``plan`` (in ``jobs`` worker processes) and collect the outcomes."""
    run = functools.partial(
        harness.run_job, configs=dict(configs), previous_baselines=previous_baselines
    )
    ordered = sorted(plan.jobs, key=lambda j: -j.cost)
    done: list[harness.JobResult] = []
    started = time.perf_counter()

    def report(result: harness.JobResult) -> None:
        done.append(result)
        if progress:
            elapsed = time.perf_counter() - started
            print(
                f"  [{len(done)}/{len(ordered)}] {result.name}: {result.runs} runs, "
                f"{result.queries} queries, {result.seconds:.1f}s (elapsed {elapsed:.0f}s)",
                file=sys.stderr,
                flush=True,
            )

    if jobs <= 1 or len(ordered) <= 1:
        for job in ordered:
            report(run(job))
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(run, job) for job in ordered]
            for future in as_completed(futures):
                report(future.result())
    order = {job.name: i for i, job in enumerate(plan.jobs)}
    done.sort(key=lambda r: order[r.name])
    return metrics.Results(
        injections=[o for r in done for o in r.injections],
        aa=[a for r in done for a in r.aa],
        queries=sum(r.queries for r in done),
        runs=sum(r.runs for r in done),
    )


def render(
    plan: corpus.Plan,
    results: metrics.Results,
    *,
    seconds: float,
    command: str,
    previous_baselines: bool = True,
) -> str:
    """The report as markdown."""
    found = metrics.goals(results)
    steps = len({o.ident for o in results.injections if o.scenario == "step"})
    aa_runs = sum(a.runs for a in results.aa if a.config == results.configs()[0])
    lines = [
        "# Detection quality",
        "",
        f"Command: `{command}`",
        "",
        f"- sizes (samples per 1 h window): {', '.join(metrics._size(s) for s in plan.sizes)}; "
        f"dispersion phi: {', '.join(f'{p:g}' for p in plan.phis)}; deltas: "
        f"{', '.join('+' + metrics._pct(d) for d in plan.deltas)}; {plan.trials} trials per "
        "(delta, share bin, self/total) cell",
        f"- {steps} step injections, {aa_runs} A/A runs, "
        f"{len({o.ident for o in results.injections if o.scenario == 'transient'})} transients, "
        f"{len({o.ident for o in results.injections if o.scenario == 'cost_shift'})} "
        "cost shifts; real stacks: "
        + (
            f"{plan.real_stacks} from {len(plan.real_stack_files)} shared pprof files"
            if plan.real_stacks
            else "none (shared test data not found)"
        ),
        f"- {results.runs} detection runs (each judged under both configurations), "
        f"{results.queries} HTTP queries to the sandbox; {seconds:.0f} s",
        "- configurations: **default** = the shipped thresholds (growth >= 0.5 %, no share "
        "gate, baselines pooled); **strict** = the earlier defaults (relative >= 5 %, share "
        ">= 0.1 pp, each baseline on its own)"
        + (
            "; **per-baseline** = default gates, each baseline on its own"
            if "per-baseline" in results.configs()
            else ""
        ),
        "- persistence: "
        + (
            "previous window against its own -1d/-7d baselines when a first pass has "
            "candidates (as the daemon does)"
            if previous_baselines
            else "previous window against the current window's baselines (older behaviour)"
        ),
        "",
        "## Goals",
        "",
        metrics.goals_table(results, found),
        "",
        "## A/A (no change; every finding is a false alert)",
        "",
        metrics.aa_table(results),
        "",
        "## Transients, cost shifts, versions, latency, precision",
        "",
        metrics.side_table(results),
        "",
        "## MDE80: measured default / strict (theoretical limit)",
        "",
        "Extra work in the function (+10 % = 1.1x its CPU) detected with 80 % recall within "
        "two windows; `<=` below the smallest delta, `>` not reached at the largest. Theory: "
        "mean power of the one-sided test of `stats.minimal_detectable_effect` (alpha "
        "0.01/200, power 0.8) over the same injections, counts and phi.",
        "",
        metrics.mde_table(results),
        "",
        "## Recall within two windows, default / strict (self and total pooled)",
        "",
        metrics.goal_recall_table(results),
    ]
    for config in results.configs():
        for phi in results.phis():
            lines += [
                "",
                f"### Recall, {config} gates, phi={phi:g} (self and total pooled)",
                "",
                metrics.recall_table(results, config, phi),
            ]
    lines += ["", "## Goal status", ""]
    for goal in found:
        lines.append(f"- [{goal.config}] {goal.goal}: **{goal.status}** - {goal.measured}")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detection", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer sizes, phis and trials")
    parser.add_argument("--trials", type=int, help="step injections per cell (default 6)")
    parser.add_argument("--aa-services", type=int, help="A/A service-weeks per config (1)")
    parser.add_argument("--sizes", help="comma-separated samples per window")
    parser.add_argument("--phis", help="comma-separated dispersions")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-real-stacks", action="store_true")
    parser.add_argument(
        "--per-baseline",
        action="store_true",
        help="also judge every run with the default gates but no pooled baseline test",
    )
    parser.add_argument(
        "--current-baselines-for-previous",
        dest="previous_baselines",
        action="store_false",
        help="older behaviour: check persistence against the current window's baselines",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--json", type=Path, help="write every judged run here")
    parser.add_argument(
        "--from-json", type=Path, help="render the report of an earlier --json instead"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        plan, results, seconds, command, variant = load(args.from_json)
        text = render(plan, results, seconds=seconds, command=command, previous_baselines=variant)
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
        return 0
    sizes: Sequence[float] = corpus.SIZES
    phis: Sequence[float] = corpus.PHIS
    trials, aa = 6, 1
    if args.quick:
        sizes, phis, trials = (100_000.0, 1_000_000.0), (1.0, 4.0), 3
    if args.sizes:
        sizes = [float(s) for s in args.sizes.split(",")]
    if args.phis:
        phis = [float(p) for p in args.phis.split(",")]
    trials = args.trials if args.trials is not None else trials
    aa = args.aa_services if args.aa_services is not None else aa
    plan = corpus.plan(
        sizes=sizes,
        phis=phis,
        trials=trials,
        aa_services=aa,
        seed=args.seed,
        use_real_stacks=not args.no_real_stacks,
    )
    print(
        f"detection benchmark: {len(plan.jobs)} jobs on {args.jobs} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    configs = {**harness.CONFIGS, **(harness.PER_BASELINE if args.per_baseline else {})}
    results = execute(
        plan,
        args.jobs,
        progress=True,
        previous_baselines=args.previous_baselines,
        configs=configs,
    )
    seconds = time.perf_counter() - started
    shown = " ".join(["python -m bench.detection", *(argv if argv is not None else sys.argv[1:])])
    text = render(
        plan,
        results,
        seconds=seconds,
        command=shown.strip(),
        previous_baselines=args.previous_baselines,
    )
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        save(
            args.json,
            plan,
            results,
            seconds=seconds,
            command=shown.strip(),
            previous_baselines=args.previous_baselines,
        )
    return 0


def save(
    path: Path,
    plan: corpus.Plan,
    results: metrics.Results,
    *,
    seconds: float,
    command: str,
    previous_baselines: bool = True,
) -> None:
    """Write the judged runs and what produced them as JSON (see ``--from-json``)."""
    payload: dict[str, Any] = {
        "command": command,
        "seconds": seconds,
        "previous_baselines": previous_baselines,
        "plan": {
            "sizes": plan.sizes,
            "phis": plan.phis,
            "deltas": plan.deltas,
            "trials": plan.trials,
            "real_stacks": plan.real_stacks,
            "real_stack_files": plan.real_stack_files,
        },
        "queries": results.queries,
        "runs": results.runs,
        "injections": [asdict(o) for o in results.injections],
        "aa": [asdict(a) for a in results.aa],
    }
    path.write_text(json.dumps(payload, indent=1))


def load(path: Path) -> tuple[corpus.Plan, metrics.Results, float, str, bool]:
    """Read what :func:`save` wrote."""
    data = json.loads(path.read_text())
    meta = data["plan"]
    plan = corpus.Plan(
        jobs=(),
        sizes=tuple(meta["sizes"]),
        phis=tuple(meta["phis"]),
        deltas=tuple(meta["deltas"]),
        trials=int(meta["trials"]),
        real_stacks=int(meta["real_stacks"]),
        real_stack_files=tuple(meta["real_stack_files"]),
    )
    injections = []
    for row in data["injections"]:
        row["version"] = tuple(row["version"]) if row["version"] else None
        row["false_names"] = tuple(row["false_names"])
        injections.append(harness.InjectionOutcome(**row))
    aa = []
    for row in data["aa"]:
        row["false_names"] = tuple(row["false_names"])
        aa.append(harness.AAOutcome(**row))
    results = metrics.Results(injections, aa, data["queries"], data["runs"])
    variant = bool(data.get("previous_baselines", False))
    return plan, results, float(data["seconds"]), str(data["command"]), variant


if __name__ == "__main__":
    raise SystemExit(main())
