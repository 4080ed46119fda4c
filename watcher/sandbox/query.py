"""The QuerierService methods of the sandbox, independent of HTTP.

Each method takes the decoded request message (a protobuf message from :mod:`watcher.proto`)
and returns the response as a *protojson-shaped* dict: lowerCamelCase keys, zero values left
out, Python ``int`` for 64-bit integers, ``float`` for doubles, ``bytes`` for bytes fields.
:func:`dumps_protojson` writes such a dict as the JSON the Go server sends (int64 as
strings); :func:`for_parse_dict` prepares it for a protobuf class. A method may instead return
:class:`RawProto` when the binary response is already at hand (pprof).

Validation follows the Pyroscope query frontend (v2 read path) step by step, with its error
messages; see the querier API spec §1.5 and §2.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.errors import ProfileTypeError, SelectorError
from watcher.sandbox.store import ProfileStore, split_profile_type
from watcher.selectors import Matcher, is_legacy_label_name, parse_selector

__all__ = [
    "CODE_TO_HTTP",
    "DEFAULT_MAX_NODES",
    "MAX_NODES_LIMIT",
    "Querier",
    "QueryLimits",
    "RawProto",
    "RpcError",
    "dumps_protojson",
    "for_parse_dict",
    "go_duration",
]

DEFAULT_MAX_NODES = 8192
MAX_NODES_LIMIT = 1048576
DAY_MS = 86_400_000
HOUR_MS = 3_600_000

CODE_TO_HTTP: dict[str, int] = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}

FORMAT_FLAMEGRAPH = 1
FORMAT_TREE = 2
FORMAT_DOT = 3
FORMAT_PPROF = 4
EXEMPLAR_TYPE_SPAN = 3


class RpcError(Exception):
    """A Connect error: ``code`` (snake_case) and ``message``; ``status`` is the HTTP status."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self._status = status

    @property
    def status(self) -> int:
        """The HTTP status: the Connect mapping of ``code`` unless given explicitly."""
        if self._status is not None:
            return self._status
        return CODE_TO_HTTP.get(self.code, 500)

    def body(self) -> bytes:
        payload: dict[str, str] = {"code": self.code}
        if self.message:
            payload["message"] = self.message
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def invalid(message: str) -> RpcError:
    return RpcError("invalid_argument", message)


@dataclass(frozen=True, slots=True)
class RawProto:
    """A response whose binary form is ready (``data``); ``json`` renders it for JSON."""

    data: bytes
    json: Callable[[], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """The server limits that shape answers (Pyroscope defaults)."""

    max_query_length_ms: int = DAY_MS
    #: ``None`` disables the lookback clamp (Pyroscope's default is one week).
    max_query_lookback_ms: int | None = 7 * DAY_MS
    max_nodes_default: int = DEFAULT_MAX_NODES
    max_nodes_max: int = MAX_NODES_LIMIT


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a method knows about the caller."""

    tenants: Sequence[str] = ("anonymous",)
    allow_utf8_labelnames: bool = False
    now_ms: int = field(default_factory=lambda: int(time.time() * 1000))


# ------------------------------------------------------------------ formatting helpers


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String()`` for a whole number of milliseconds."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rem = divmod(ms, HOUR_MS)
    minutes, rem = divmod(rem, 60_000)
    seconds, frac = divmod(rem, 1000)
    sec = f"{seconds}.{frac:03d}".rstrip("0") if frac else str(seconds)
    if hours:
        return f"{sign}{hours}h{minutes}m{sec}s"
    if minutes:
        return f"{sign}{minutes}m{sec}s"
    return f"{sign}{sec}s"


def prom_duration(ms: int) -> str:
    """Prometheus ``model.Duration.String()`` (``1d``, ``1w``, ``1h30m``)."""
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (
        ("y", 365 * DAY_MS),
        ("w", 7 * DAY_MS),
        ("d", DAY_MS),
        ("h", HOUR_MS),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def go_quote(text: str) -> str:
    """Close to Go's ``%q``: a double-quoted string with escapes."""
    return json.dumps(text, ensure_ascii=False)


def _format_double(value: float) -> str:
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def dumps_protojson(obj: Any) -> bytes:
    """Write a protojson-shaped dict as compact JSON: ints become strings (int64), floats
    are numbers (double), bytes are standard base64."""
    out: list[str] = []
    _write(obj, out)
    return "".join(out).encode("utf-8")


def _write(obj: Any, out: list[str]) -> None:
    kind = type(obj)
    if kind is dict:
        out.append("{")
        first = True
        for key, value in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value, out)
        out.append("}")
    elif kind is list or kind is tuple:
        if obj and all(type(v) is int for v in obj):
            out.append('["')
            out.append('","'.join(map(str, obj)))
            out.append('"]')
            return
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _write(value, out)
        out.append("]")
    elif kind is str:
        out.append(json.dumps(obj, ensure_ascii=False))
    elif kind is bool:
        out.append("true" if obj else "false")
    elif kind is int:
        out.append(f'"{obj}"')
    elif kind is float:
        out.append(_format_double(obj))
    elif kind is bytes:
        out.append('"' + base64.b64encode(obj).decode("ascii") + '"')
    elif obj is None:
        out.append("null")
    else:
        raise TypeError(f"cannot write {kind.__name__} as protojson")


def for_parse_dict(obj: Any) -> Any:
    """The same dict with bytes as base64 strings, ready for ``json_format.ParseDict``."""
    if isinstance(obj, dict):
        return {k: for_parse_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        if obj and all(type(v) is int for v in obj):
            return list(obj)
        return [for_parse_dict(v) for v in obj]
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    return obj


def _label_pairs(items: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    out = []
    for name, value in items:
        pair: dict[str, str] = {}
        if name:
            pair["name"] = name
        if value:
            pair["value"] = value
        out.append(pair)
    return out


def _compare_pairs(a: Sequence[tuple[str, str]], b: Sequence[tuple[str, str]]) -> int:
    """Pyroscope's ``CompareLabelPairs``."""
    for (an, av), (bn, bv) in zip(a, b, strict=False):
        if an != bn:
            return -1 if an < bn else 1
        if av != bv:
            return -1 if av < bv else 1
    return len(a) - len(b)


class _PairsKey:
    """Sort key ordering label-pair lists with :func:`_compare_pairs`."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __lt__(self, other: _PairsKey) -> bool:
        return _compare_pairs(self.pairs, other.pairs) < 0


# ------------------------------------------------------------------ request reading


def _has(msg: Any, name: str) -> bool:
    try:
        return bool(msg.HasField(name))
    except ValueError:
        return False


def _opt_int(msg: Any, name: str) -> int:
    """An ``optional int64`` as the Go getter sees it (0 when unset)."""
    return int(getattr(msg, name)) if _has(msg, name) else 0


def _call_site(msg: Any) -> tuple[str, ...]:
    if not _has(msg, "stack_trace_selector"):
        return ()
    selector = msg.stack_trace_selector
    if _has(selector, "go_pgo"):
        return ()
    return tuple(loc.name for loc in selector.call_site)


# ------------------------------------------------------------------ the service


class Querier:
    """The QuerierService over a :class:`ProfileStore`."""

    METHODS = (
        "ProfileTypes",
        "LabelValues",
        "LabelNames",
        "Series",
        "SelectMergeStacktraces",
        "SelectMergeSpanProfile",
        "SelectMergeProfile",
        "SelectSeries",
        "SelectHeatmap",
        "Diff",
        "GetProfileStats",
        "AnalyzeQuery",
    )

    def __init__(self, store: ProfileStore, limits: QueryLimits | None = None) -> None:
        self.store = store
        self.limits = limits or QueryLimits()

    def call(self, method: str, request: Any, ctx: CallContext) -> dict[str, Any] | RawProto:
        """Run one method; raises :class:`RpcError` for Connect errors."""
        handler = getattr(self, "rpc_" + method, None)
        if handler is None:
            raise RpcError(
                "unimplemented", f"querier.v1.QuerierService.{method} is not implemented"
            )
        result: dict[str, Any] | RawProto = handler(request, ctx)
        return result

    # -- validation ---------------------------------------------------------------------

    def _range(self, start: int, end: int, ctx: CallContext) -> tuple[int, int, bool]:
        """``ValidateRangeRequest``: returns (start, end, empty)."""
        if start == 0 or end == 0:
            raise invalid("missing time range in the query")
        if start > end:
            raise invalid("query start time is after end time")
        lookback = self.limits.max_query_lookback_ms
        if lookback is not None and lookback > 0:
            min_start = ctx.now_ms - lookback
            if end < min_start:
                return start, end, True
            if start < min_start:
                start = min_start
        limit = self.limits.max_query_length_ms
        if limit > 0 and end - start > limit:
            raise invalid(
                "the query time range exceeds the limit (max_query_length, actual: "
                f"{go_duration(end - start)}, limit: {prom_duration(limit)})"
            )
        return start, end, False

    def _max_nodes(self, n: int) -> int:
        """``ValidateMaxNodes``."""
        if n == 0:
            return self.limits.max_nodes_default
        limit = self.limits.max_nodes_max
        if limit:
            if n > limit:
                raise invalid(f"max flamegraph nodes limit {n} is greater than allowed {limit}")
            if n < 0:
                raise invalid(f"max flamegraph nodes limit must be set (max allowed {limit})")
        return n

    @staticmethod
    def _profile_type(profile_type_id: str) -> tuple[str, str, str, str, str]:
        try:
            return split_profile_type(profile_type_id)
        except ProfileTypeError as exc:
            raise invalid(str(exc)) from None

    @staticmethod
    def _selector_with_type(selector: str, profile_type_id: str) -> list[Matcher]:
        try:
            matchers = parse_selector(selector)
        except SelectorError as exc:
            raise invalid(f"parsing label selector {go_quote(selector)}: {exc}") from None
        parts = split_profile_type(profile_type_id)
        matchers.append(Matcher("__profile_type__", "=", ":".join(parts)))
        return matchers

    @staticmethod
    def _matchers(selectors: Sequence[str], *, wrap: bool) -> list[Matcher]:
        """All matchers of all selector strings, AND-ed (v2 path)."""
        out: list[Matcher] = []
        for text in selectors:
            try:
                out.extend(parse_selector(text))
            except SelectorError as exc:
                message = f"failed to parse label selector {go_quote(text)}: {exc}"
                if wrap:
                    message = f"parsing label selector: {message}"
                raise invalid(message) from None
        return out

    # -- tree pipeline ------------------------------------------------------------------

    def _tree(self, req: Any, ctx: CallContext) -> Any | None:
        """``selectMergeStacktracesTree`` without serialisation: the merged tree truncated
        with the tree-bytes rule at the validated max nodes (§3.3 step 2), or ``None`` for a
        range wholly before the lookback."""
        from watcher.flamegraph.tree import Tree

        start, end, empty = self._range(int(req.start), int(req.end), ctx)
        if empty:
            return None
        validated = self._max_nodes(_opt_int(req, "max_nodes"))
        self._profile_type(req.profile_typeID)
        matchers = self._selector_with_type(req.label_selector, req.profile_typeID)
        stacks = self._select(req, matchers, start, end)
        full = Tree.from_stacks(stacks.items())
        return full.truncated(validated)

    def _select(self, req: Any, matchers: list[Matcher], start: int, end: int) -> dict[Any, int]:
        # Profile IDs, trace IDs and span IDs are pprof sample labels the store does not
        # keep; a request restricted to them selects nothing, as it would on a server whose
        # profiles carry none.
        for name in ("profile_id_selector", "trace_id_selector", "span_selector"):
            if len(getattr(req, name, ())) > 0:
                return {}
        return self.store.select(matchers, start, end, call_site=_call_site(req))

    def rpc_SelectMergeStacktraces(self, req: Any, ctx: CallContext) -> dict[str, Any] | RawProto:
        from watcher.flamegraph.encode import encode_flamegraph, encode_tree_bytes
        from watcher.flamegraph.tree import Tree

        if len(req.span_selector) > 0 and len(req.trace_id_selector) > 0:
            raise invalid("span_selector and trace_id_selector cannot be combined")
        fmt = int(req.format)
        if fmt == FORMAT_DOT:
            raise RpcError(
                "unimplemented", "dot format is only supported with the v2 query backend"
            )
        if fmt == FORMAT_PPROF:
            pprof = self._pprof(req, ctx)
            return _pprof_in_stacktraces_response(pprof)
        tree = self._tree(req, ctx)
        if fmt == FORMAT_TREE:
            if tree is None:
                return {}
            data = encode_tree_bytes(tree, 0)
            return {"tree": data} if data else {}
        rendered = encode_flamegraph(
            tree if tree is not None else Tree(), _opt_int(req, "max_nodes")
        )
        return {"flamegraph": _flamegraph_dict(rendered)}

    def rpc_SelectMergeSpanProfile(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        from watcher.flamegraph.encode import encode_flamegraph, encode_tree_bytes
        from watcher.flamegraph.tree import Tree

        tree = self._tree(req, ctx)
        if int(req.format) == FORMAT_TREE:
            data = encode_tree_bytes(tree, 0) if tree is not None else b""
            return {"tree": data} if data else {}
        rendered = encode_flamegraph(
            tree if tree is not None else Tree(), _opt_int(req, "max_nodes")
        )
        return {"flamegraph": _flamegraph_dict(rendered)}

    def _pprof(self, req: Any, ctx: CallContext) -> bytes:
        """``selectMergeStacktracesPprof``: the merged profile as uncompressed pprof bytes
        (empty bytes for an empty range or no data)."""
        from watcher.flamegraph.tree import Tree
        from watcher.pprof import build_pprof

        start, end, empty = self._range(int(req.start), int(req.end), ctx)
        if empty:
            return b""
        name, sample_type, sample_unit, period_type, period_unit = self._profile_type(
            req.profile_typeID
        )
        # -querier.max-flamegraph-nodes-on-select-merge-profile is off by default: the
        # client's value is used as given, so absent means the full profile.
        max_nodes = _opt_int(req, "max_nodes")
        matchers = self._selector_with_type(req.label_selector, req.profile_typeID)
        stacks = self._select(req, matchers, start, end)
        if not stacks:
            return b""
        tree = Tree.from_stacks(stacks.items())
        if max_nodes > 0:
            tree = tree.truncated(max_nodes)
        data: bytes = build_pprof(
            tree,
            sample_type=sample_type,
            sample_unit=sample_unit,
            period_type=period_type,
            period_unit=period_unit,
            period=0,
            time_nanos=start * 1_000_000,
            duration_nanos=(end - start) * 1_000_000,
        )
        return data

    def rpc_SelectMergeProfile(self, req: Any, ctx: CallContext) -> RawProto:
        pprof = self._pprof(req, ctx)
        return RawProto(pprof, lambda: _profile_json(pprof))

    # -- Diff ---------------------------------------------------------------------------

    def rpc_Diff(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        from watcher.flamegraph.encode import encode_diff
        from watcher.flamegraph.tree import Tree

        left = req.left
        right = req.right
        n = max(_opt_int(left, "max_nodes"), _opt_int(right, "max_nodes"))
        n = self._max_nodes(n)
        self._profile_type(left.profile_typeID)
        self._profile_type(right.profile_typeID)
        trees = []
        for side in (left, right):
            side.max_nodes = n
            try:
                tree = self._tree(side, ctx)
            except RpcError as exc:
                raise invalid(f"{exc.code}: {exc.message}") from None
            trees.append(tree if tree is not None else Tree())
        try:
            diff = encode_diff(trees[0], trees[1], n)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        return {"flamegraph": _diff_dict(diff)}

    # -- SelectSeries -------------------------------------------------------------------

    def rpc_SelectSeries(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        start, end, empty = self._range(int(req.start), int(req.end), ctx)
        if empty:
            return {}
        self._profile_type(req.profile_typeID)
        step = float(req.step)
        if not step >= 0.001:
            raise invalid("step must be >= 1ms")
        step_ms = int(step * 1e9) // 1_000_000
        matchers = self._selector_with_type(req.label_selector, req.profile_typeID)
        if int(req.exemplar_type) == EXEMPLAR_TYPE_SPAN:
            raise RpcError("unimplemented", "span exemplars are not supported by SelectSeries")
        group_by = sorted(set(req.group_by))
        call_site = _call_site(req)
        buckets: dict[tuple[tuple[str, str], ...], dict[int, int]] = {}
        for series in self.store.select_totals(matchers, start - step_ms, end, call_site=call_site):
            key = tuple((n, series.labels[n]) for n in group_by if series.labels.get(n))
            points = buckets.setdefault(key, {})
            for ts, total in series.points:
                k = -((start - ts) // step_ms)  # ceil((ts - start) / step)
                t = start + k * step_ms
                if t < start or t > end:
                    continue
                points[t] = points.get(t, 0) + total
        out = []
        for key, points in buckets.items():
            if not points:
                continue
            ordered = [(t, points[t]) for t in sorted(points)]
            out.append((key, ordered, float(sum(v for _, v in ordered))))
        # timeseries.TopSeries: by summed value, descending; ties by label pairs.
        out.sort(key=lambda item: _PairsKey(item[0]))
        out.sort(key=lambda item: -item[2])
        limit = _opt_int(req, "limit")
        if limit > 0:
            out = out[:limit]
        if not out:
            return {}
        series_out = []
        for key, ordered, _sum in out:
            entry: dict[str, Any] = {}
            if key:
                entry["labels"] = _label_pairs(key)
            entry["points"] = [_point(t, v) for t, v in ordered]
            series_out.append(entry)
        return {"series": series_out}

    def rpc_SelectHeatmap(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        raise RpcError("unimplemented", "this endpoint is not available in v1 frontend")

    def rpc_AnalyzeQuery(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        return {}

    # -- metadata -----------------------------------------------------------------------

    def rpc_ProfileTypes(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        start, end = int(req.start), int(req.end)
        if start == 0 and end == 0:
            start, end = ctx.now_ms - HOUR_MS, ctx.now_ms
        start, end, empty = self._range(start, end, ctx)
        if empty:
            return {}
        types = []
        for pt in self.store.profile_types(start, end):
            name, sample_type, sample_unit, period_type, period_unit = split_profile_type(pt)
            entry = {
                "ID": pt,
                "name": name,
                "sampleType": sample_type,
                "sampleUnit": sample_unit,
                "periodType": period_type,
                "periodUnit": period_unit,
            }
            types.append({k: v for k, v in entry.items() if v})
        return {"profileTypes": types} if types else {}

    def rpc_LabelNames(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        start, end, empty = self._range(int(req.start), int(req.end), ctx)
        if empty:
            return {}
        matchers = self._matchers(list(req.matchers), wrap=True)
        names = self.store.label_names(matchers, start, end)
        if not ctx.allow_utf8_labelnames:
            names = [n for n in names if is_legacy_label_name(n)]
        return {"names": names} if names else {}

    def rpc_LabelValues(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        start, end, empty = self._range(int(req.start), int(req.end), ctx)
        if empty:
            return {}
        if not req.name:
            raise invalid("name is required")
        matchers = self._matchers(list(req.matchers), wrap=True)
        values = self.store.label_values(req.name, matchers, start, end)
        return {"names": values} if values else {}

    def rpc_Series(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        start, end, empty = self._range(int(req.start), int(req.end), ctx)
        if empty:
            return {}
        matchers = self._matchers(list(req.matchers), wrap=False)
        series = self.store.series(matchers, start, end)
        wanted = list(req.label_names)
        if not ctx.allow_utf8_labelnames:
            if not wanted:
                wanted = sorted({n for labels in series for n in labels})
            wanted = [n for n in wanted if is_legacy_label_name(n)]
        seen: set[tuple[tuple[str, str], ...]] = set()
        sets: list[tuple[tuple[str, str], ...]] = []
        if wanted:
            present = {n for labels in series for n in labels}
            if not present.intersection(wanted):
                return {}
        names = sorted(set(wanted))
        for labels in series:
            if names:
                key = tuple((n, labels[n]) for n in names if labels.get(n))
            else:
                key = tuple(sorted(labels.items()))
            if key not in seen:
                seen.add(key)
                sets.append(key)
        sets.sort(key=_PairsKey)
        if not sets:
            return {}
        return {"labelsSet": [({"labels": _label_pairs(s)} if s else {}) for s in sets]}

    def rpc_GetProfileStats(self, req: Any, ctx: CallContext) -> dict[str, Any]:
        if len(ctx.tenants) != 1:
            raise invalid(f"expected 1 tenant, got {len(ctx.tenants)}")
        stats = self.store.stats()
        out: dict[str, Any] = {}
        if stats.data_ingested:
            out["dataIngested"] = True
            if stats.oldest_ms:
                out["oldestProfileTime"] = stats.oldest_ms
            if stats.newest_ms:
                out["newestProfileTime"] = stats.newest_ms
        return out


# ------------------------------------------------------------------ response shapes


def _point(timestamp: int, value: int) -> dict[str, Any]:
    point: dict[str, Any] = {}
    if value:
        point["value"] = float(value)
    if timestamp:
        point["timestamp"] = timestamp
    return point


def _omit_zero(message: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    for key in keys:
        if not message.get(key):
            message.pop(key, None)
    return message


def _flamegraph_dict(fg: Mapping[str, Any]) -> dict[str, Any]:
    """The encoder's FlameGraph as a protojson-shaped dict."""
    out: dict[str, Any] = {
        "names": list(fg["names"]),
        "levels": [({"values": list(level)} if len(level) else {}) for level in fg["levels"]],
        "total": int(fg.get("total", 0)),
        "maxSelf": int(fg.get("maxSelf", 0)),
    }
    return _omit_zero(out, ("names", "levels", "total", "maxSelf"))


def _diff_dict(fg: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "names": list(fg["names"]),
        "levels": [({"values": list(level)} if len(level) else {}) for level in fg["levels"]],
        "total": int(fg.get("total", 0)),
        "maxSelf": int(fg.get("maxSelf", 0)),
        "leftTicks": int(fg.get("leftTicks", 0)),
        "rightTicks": int(fg.get("rightTicks", 0)),
    }
    return _omit_zero(out, ("names", "levels", "total", "maxSelf", "leftTicks", "rightTicks"))


def _profile_json(pprof: bytes) -> dict[str, Any]:
    from watcher.proto import from_binary, messages, to_json_dict

    if not pprof:
        return {}
    return to_json_dict(from_binary(pprof, messages().google.Profile))


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _pprof_in_stacktraces_response(pprof: bytes) -> RawProto:
    """``SelectMergeStacktracesResponse{pprof: PprofProfile{profile: <pprof>}}``.

    Field 5 (PprofProfile) holding field 1 (Profile), both length-delimited; an empty
    profile is still present (``{"pprof":{"profile":{}}}``).
    """
    inner = b"\x0a" + _uvarint(len(pprof)) + pprof
    data = b"\x2a" + _uvarint(len(inner)) + inner
    return RawProto(data, lambda: {"pprof": {"profile": _profile_json(pprof)}})
