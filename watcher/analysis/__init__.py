"""Regression statistics and detection over function tables (pure, standard library only).

:mod:`watcher.analysis.stats` holds the numbers (normal distribution, rate test, dispersion,
multiplicity, confidence intervals, minimal detectable effect, sample-count conversion);
:mod:`watcher.analysis.detect` applies them to a service's current, previous and baseline
windows as ``docs/detection.md`` section 2 describes.
"""
