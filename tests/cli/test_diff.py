"""`diff` / `pyroscope-diff` end to end: an injected regression comes out on top."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from .support import SECOND, Env, iso

BASELINE = {
    ("main", "serve", "a.Work"): 400 * SECOND,
    ("main", "serve", "b.Work"): 400 * SECOND,
    ("main", "regress.Hot"): 50 * SECOND,
    ("main", "gone.Old"): 150 * SECOND,
}
COMPARISON = {
    ("main", "serve", "a.Work"): 200 * SECOND,
    ("main", "serve", "b.Work"): 200 * SECOND,
    ("main", "regress.Hot"): 300 * SECOND,
    ("main", "new.Func"): 50 * SECOND,
}


def _seed(env: Env, baseline_at: timedelta, comparison_at: timedelta) -> None:
    now = datetime.now(UTC)
    env.seed("checkout", BASELINE, at=now - baseline_at)
    env.seed("checkout", COMPARISON, at=now - comparison_at)


def _table(out: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("#"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip() or not line.split()[0].isdigit():
            break
        rows.append(line.split())
    return rows


def test_seed_form_lists_the_injected_regression_first(env: Env) -> None:
    """`pyroscope-diff prod svc -2h -1h -30m now`: the grown function leads, marked significant."""
    _seed(env, timedelta(minutes=90), timedelta(minutes=15))
    r = env.run("pyroscope-diff", "prod", "checkout", "-2h", "-1h", "-30m", "now")
    assert r.code == 0, r
    rows = _table(r.out)
    names = [row[-1] if row[-1] not in ("[new]", "[gone]") else row[-2] for row in rows]
    assert names == ["regress.Hot", "new.Func", "a.Work", "b.Work", "gone.Old"]
    hot = rows[0]
    # #, base%, cmp%, change, rel, base/s, cmp/s, sig, function
    assert hot[1:8] == ["5.0%", "40.0%", "+35.0pp", "+700.0%", "0.0139", "0.167", "yes"]
    assert rows[1][-1] == "[new]" and rows[1][4] == "new"
    assert rows[4][-1] == "[gone]"
    assert r.out.splitlines()[-1] == (
        "total change: +0.139 cores (0.278 cores -> 0.417 cores, +50.0%)"
    )


def test_windows_of_different_length_are_normalised(env: Env) -> None:
    """Rates are per second of each window; shares are per window total."""
    _seed(env, timedelta(minutes=90), timedelta(minutes=15))
    r = env.run("pyrowatch", "diff", "prod", "checkout", "-2h", "-1h", "-30m", "now", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["baseline"]["seconds"] == 3600
    assert data["comparison"]["seconds"] == 1800
    assert data["baseline"]["total_per_second"] == 1000 * SECOND / 3600
    assert data["comparison"]["total_per_second"] == 750 * SECOND / 1800
    hot = data["functions"][0]
    assert hot["name"] == "regress.Hot"
    assert hot["significant"] == "yes" and hot["p_value"] < 1e-6
    assert hot["baseline_share"] == 0.05 and hot["comparison_share"] == 0.4
    by_name = {f["name"]: f for f in data["functions"]}
    assert by_name["new.Func"]["status"] == "new"
    assert by_name["new.Func"]["relative_change"] is None
    assert by_name["gone.Old"]["status"] == "gone"


def test_iso_and_epoch_times(env: Env) -> None:
    """The four times may be ISO 8601 or unix seconds, as the toolkit accepted."""
    now = datetime.now(UTC).replace(microsecond=0)
    _seed(env, timedelta(minutes=90), timedelta(minutes=15))
    b0, b1 = now - timedelta(hours=2), now - timedelta(hours=1)
    c0 = now - timedelta(minutes=30)
    r = env.run(
        "pyroscope-diff",
        "prod",
        "checkout",
        iso(b0),
        str(int(b1.timestamp())),
        str(int(c0.timestamp() * 1000)),
        iso(now),
    )
    assert r.code == 0, r
    assert _table(r.out)[0][-1] == "regress.Hot"
    assert f"baseline   {iso(b0)} .. {iso(b1)} (1h)" in r.out


def test_vs_preset_compares_the_same_window_earlier(env: Env) -> None:
    """`--vs 1h --range 30m`: the last 30 minutes against the 30 minutes an hour before."""
    _seed(env, timedelta(minutes=75), timedelta(minutes=10))
    r = env.run("pyrowatch", "diff", "prod", "checkout", "--vs", "1h", "--range", "30m", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["functions"][0]["name"] == "regress.Hot"
    base_end = datetime.fromisoformat(data["baseline"]["end"])
    cmp_end = datetime.fromisoformat(data["comparison"]["end"])
    assert cmp_end - base_end == timedelta(hours=1)
    assert data["comparison"]["seconds"] == 1800


def test_label_filter_applies_to_both_windows(env: Env) -> None:
    """`--label profile_id=debug-x` restricts both sides."""
    _seed(env, timedelta(minutes=90), timedelta(minutes=15))
    now = datetime.now(UTC)
    env.seed(
        "checkout",
        {("main", "dbg.A"): SECOND},
        at=now - timedelta(minutes=90),
        labels={"profile_id": "debug-x"},
    )
    env.seed(
        "checkout",
        {("main", "dbg.A"): SECOND, ("main", "dbg.B"): SECOND},
        at=now - timedelta(minutes=15),
        labels={"profile_id": "debug-x"},
    )
    r = env.run(
        "pyroscope-diff",
        "prod",
        "checkout",
        "-2h",
        "-1h",
        "-30m",
        "now",
        "--label",
        "profile_id=debug-x",
        "--json",
    )
    assert r.code == 0, r
    names = [f["name"] for f in json.loads(r.out)["functions"]]
    assert names == ["dbg.B", "dbg.A"]


def test_no_data_in_either_window_exits_zero(env: Env) -> None:
    """An empty comparison says so in one line and exits 0."""
    r = env.run("pyroscope-diff", "prod", "checkout", "-2h", "-1h", "-30m", "now")
    assert r.code == 0, r
    assert r.out == ""
    assert len(r.err.splitlines()) == 1 and "either window" in r.err


def test_wrong_number_of_times_is_a_usage_error(env: Env) -> None:
    """Three times instead of four: exit 2 with the accepted forms."""
    r = env.run("pyroscope-diff", "prod", "checkout", "-2h", "-1h", "-30m")
    assert r.code == 2, r
    assert r.err.startswith("error: give four times")
    assert len(r.err.splitlines()) == 1
