"""Coverage-guided fuzzing (atheris, i.e. libFuzzer) of the parsers hostile input meets first:
the sidecar reader with the metadata parser, and the file-name pattern (compiling a pattern and
matching a name). The properties are the ``check_*`` functions of tests/test_hostile_input.py,
which hypothesis runs on every test run; this runs them for as long as you like, guided by the
branches each input reaches.

atheris is not a dependency of callrec (a 35 MB wheel with libFuzzer, for this alone); put it
beside the project instead of into its venv:

    .venv/bin/pip install --target /tmp/atheris atheris
    PYTHONPATH=/tmp/atheris:. .venv/bin/python tests/fuzz/fuzz_parsers.py -max_total_time=600

A broken property stops the run with its traceback and saves the input as ``crash-<sha1>``;
replay it by passing that file instead of the options.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["ingest"]):
    from ingest.filename_pattern import FilenamePattern
    from tests.test_hostile_input import (
        README_PATTERN,
        check_filename,
        check_pattern,
        check_sidecar,
    )

PATTERN = FilenamePattern.compile(README_PATTERN)


def one_input(data: bytes) -> None:
    """The first byte picks the parser; the rest is its input."""
    provider = atheris.FuzzedDataProvider(data)
    target = provider.ConsumeIntInRange(0, 2)
    if target == 0:
        check_sidecar(provider.ConsumeBytes(provider.remaining_bytes()))
    elif target == 1:
        check_filename(PATTERN, provider.ConsumeUnicode(provider.remaining_bytes()))
    else:
        pattern = provider.ConsumeUnicode(provider.ConsumeIntInRange(0, 80))
        check_pattern(pattern, [provider.ConsumeUnicode(provider.remaining_bytes())])


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
