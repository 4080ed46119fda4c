"""The unit of data the sandbox stores: one profile of one series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Stack = tuple[str, ...]


@dataclass(slots=True)
class ProfileRecord:
    """One profile of one sample type, as ingested or generated.

    ``labels`` are the series labels a client sent (``service_name``, ``__name__`` and user
    labels); the store derives ``__profile_type__``, ``__type__``, ``__unit__``,
    ``__period_type__`` and ``__period_unit__`` from ``profile_type``.
    ``stacks`` maps root-first stacks to values in the profile's unit.
    """

    labels: Mapping[str, str]
    profile_type: str
    timestamp_ms: int
    stacks: Mapping[Stack, int]
    duration_ms: int = 0
    sample_labels: Mapping[Stack, Mapping[str, str]] = field(default_factory=dict)
