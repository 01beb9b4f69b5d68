"""Metadata from a file name, for PBXs that can only name their recordings.

A pattern such as ``{direction}-{customer_number}-{agent_id}-{started:%Y%m%d-%H%M%S}-{call_id}.wav``
names metadata fields in braces; ``started`` (or ``started_at``) takes a strftime format. The
pattern is compiled once to an anchored regular expression; the time it yields is offset-less
and therefore read in the configured time zone by :mod:`ingest.metadata`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ingest.metadata import MetadataError

_FIELD = re.compile(r"\{(?P<name>[a-z_]+)(?::(?P<format>[^}]+))?\}")
_DIRECTIVES = {
    "Y": r"\d{4}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}", "S": r"\d{2}",
    "y": r"\d{2}", "f": r"\d{1,6}", "j": r"\d{3}", "%": "%",
}  # fmt: skip
_TIME_FIELDS = {"started", "started_at"}


@dataclass(frozen=True)
class FilenamePattern:
    """A compiled file-name pattern. Build it with :meth:`compile`."""

    pattern: str
    regex: re.Pattern[str]
    time_formats: dict[str, str]

    @classmethod
    def compile(cls, pattern: str) -> FilenamePattern:
        """Raises:
        ValueError: The pattern names a field twice, has no ``call_id``, or uses a time
            directive without a fixed width.
        """
        parts: list[str] = []
        formats: dict[str, str] = {}
        seen: set[str] = set()
        position = 0
        for match in _FIELD.finditer(pattern):
            parts.append(re.escape(pattern[position : match.start()]))
            name, time_format = match["name"], match["format"]
            if name in seen:
                raise ValueError(f"filename pattern names {{{name}}} twice: {pattern!r}")
            seen.add(name)
            if time_format:
                if name not in _TIME_FIELDS:
                    raise ValueError(f"only {{started:FORMAT}} takes a format, not {{{name}}}")
                formats[name] = time_format
                parts.append(f"(?P<{name}>{_time_regex(time_format)})")
            else:
                parts.append(f"(?P<{name}>[^/]+?)")
            position = match.end()
        parts.append(re.escape(pattern[position:]))
        if "call_id" not in seen:
            raise ValueError(f"filename pattern has no {{call_id}}: {pattern!r}")
        return cls(
            pattern=pattern, regex=re.compile("^" + "".join(parts) + "$"), time_formats=formats
        )

    def parse(self, filename: str) -> dict[str, object]:
        """The fields in ``filename`` (the base name of an object key or path).

        Raises:
            MetadataError: The name does not match the pattern or its time is not a real time.
        """
        match = self.regex.match(filename)
        if not match:
            raise MetadataError(
                f"file name {filename!r} does not match the pattern {self.pattern!r}"
            )
        fields: dict[str, object] = dict(match.groupdict())
        for name, time_format in self.time_formats.items():
            try:
                fields[name] = datetime.strptime(str(fields[name]), time_format)
            except ValueError:
                raise MetadataError(
                    f"file name {filename!r}: {fields[name]!r} is not a time of the form "
                    f"{time_format}",
                    field="started_at",
                ) from None
        return fields


def _time_regex(time_format: str) -> str:
    out, index = [], 0
    while index < len(time_format):
        char = time_format[index]
        if char == "%" and index + 1 < len(time_format):
            directive = time_format[index + 1]
            if directive not in _DIRECTIVES:
                raise ValueError(f"time directive %{directive} is not supported in file names")
            out.append(_DIRECTIVES[directive])
            index += 2
        else:
            out.append(re.escape(char))
            index += 1
    return "".join(out)
