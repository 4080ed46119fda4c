"""Logging setup: structlog, JSON when not on a TTY, one canonical line per run."""

from __future__ import annotations

import logging
import sys
from typing import Any


def configure_logging(*, json: bool | None = None, level: str = "info") -> None:
    """Configure structlog once per process.

    ``json=None`` picks JSON lines when stderr is not a terminal (a container), and the
    console renderer on a TTY.
    """
    import structlog

    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class _LazyLogger:
    """A logger bound to ``logger=name`` that resolves the structlog configuration on each
    call, so module-level loggers created at import follow :func:`configure_logging`."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def _bound(self) -> Any:
        import structlog

        return structlog.get_logger(self._name).bind(logger=self._name)

    def bind(self, **values: Any) -> Any:
        return self._bound().bind(**values)

    def __getattr__(self, method: str) -> Any:
        return getattr(self._bound(), method)


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``logger=name`` (lazy: see :class:`_LazyLogger`)."""
    return _LazyLogger(name)
