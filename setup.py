"""The optional C module; everything else is in pyproject.toml.

Where no C compiler is found the build goes on without it, and the package runs the same
Python code it would otherwise replace.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "watcher.flamegraph._speedups",
            ["watcher/flamegraph/_speedups.c"],
            optional=True,
        )
    ]
)
