"""Session fixtures: real servers, started once per pytest run.

Each server lives in its own module so that one owner edits one file:
- ``tests/s3_server.py``: a real SeaweedFS S3 server (through callrec's own supervisor).
- ``tests/postgres_server.py``: a real PostgreSQL server from Debian's package.
- ``tests/browser.py``: Debian's Chromium under Playwright, and the review app served for it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI explores the same examples on every run (a red build must be reproducible, not a dice
# roll); local runs explore new random examples each time and find new failures there.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

pytest_plugins = [
    "tests.s3_server",
    "tests.postgres_server",
    "tests.stores",
    "tests.models",
    "tests.browser",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", help="also run tests marked slow (soak tests)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow soak test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
