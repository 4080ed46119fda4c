"""A small ``google.v1.Profile`` in Connect JSON, the way a server writes it (int64 as strings)."""

from __future__ import annotations

from typing import Any

PROFILE_JSON: dict[str, Any] = {
    "sampleType": [{"type": "1", "unit": "2"}],
    "sample": [
        {"locationId": ["2", "1"], "value": ["30000000"]},
        {
            "locationId": ["1"],
            "value": ["10000000"],
            "label": [{"key": "5", "str": "6"}, {"key": "7", "num": "-3", "numUnit": "2"}],
        },
    ],
    "mapping": [
        {
            "id": "1",
            "memoryStart": "4194304",
            "memoryLimit": "8388608",
            "filename": "8",
            "hasFunctions": True,
        }
    ],
    "location": [
        {
            "id": "1",
            "mappingId": "1",
            "address": "4198400",
            "line": [{"functionId": "1", "line": "10"}],
        },
        {
            "id": "2",
            "mappingId": "1",
            "address": "4198500",
            "line": [{"functionId": "2", "line": "20"}, {"functionId": "1", "line": "11"}],
        },
    ],
    "function": [
        {"id": "1", "name": "3", "systemName": "3", "filename": "4", "startLine": "9"},
        {"id": "2", "name": "9", "filename": "4"},
    ],
    "stringTable": [
        "",
        "cpu",
        "nanoseconds",
        "main",
        "main.go",
        "thread",
        "worker",
        "depth",
        "app",
        "work",
    ],
    "timeNanos": "1714557600000000000",
    "durationNanos": "3600000000000",
    "periodType": {"type": "1", "unit": "2"},
    "period": "10000000",
    "comment": ["5"],
    "defaultSampleType": "1",
}
