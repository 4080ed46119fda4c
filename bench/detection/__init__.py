"""Detection quality benchmark: the real detector over sandbox-served synthetic profiles.

``python -m bench.detection`` (or ``python bench/detection/run.py``) generates a synthetic
fleet (:mod:`watcher.sandbox.fleet`) with Dirichlet-multinomial noise, diurnal mix drift and
real stacks from the shared Pyroscope test data when present, serves it from a
:class:`watcher.sandbox.Sandbox` over HTTP, fetches every window with
:class:`watcher.querier.QuerierClient` in tree format and evaluates every run with the
daemon's own :func:`watcher.daemon.pair.evaluate_pair` (current window and -1d and -7d
baselines; the previous window and its own baselines when there are candidates; version
lookup when something is found). It then measures false alerts, recall per share bin and
sample count, precision, the minimal detectable effect next to the theoretical limit, time
to detect, transient suppression, cost-shift labelling and version attribution, and prints
each goal with PASS or FALL SHORT.

Modules: :mod:`.corpus` (what is injected where), :mod:`.harness` (sandbox, queries,
detection), :mod:`.metrics` (aggregation, theory, goals), :mod:`.run` (the command).
"""
