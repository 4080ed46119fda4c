"""pyrowatch: watch Grafana Pyroscope profiles for performance regressions."""

__version__ = "0.1.0"
