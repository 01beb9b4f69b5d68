"""Metadata from a file name, for PBXs that can only name their recordings.

A pattern such as ``{direction}-{customer_number}-{agent_id}-{started:%Y%m%d-%H%M%S}-{call_id}.wav``
names metadata fields in braces; ``started`` (or ``started_at``) takes a strftime format. The
time it yields is offset-less and therefore read in the configured time zone by
:mod:`ingest.metadata`.

Why not a regular expression: the pattern used to compile to one with a lazy group per field,
and Python's backtracking engine tries every way of splitting a name that does *not* match
before it gives up, O(n^k) for k fields: a 255-character name of dashes against a five-field
pattern took minutes of an ingest worker. Here a name is matched in linear time (fields x
length x the width of a time field), with the lazy regex's answer: each field takes the
shortest text that lets the rest of the name match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ingest.metadata import MetadataError, quoted

_FIELD = re.compile(r"\{(?P<name>[a-z_]+)(?::(?P<format>[^}]+))?\}")
_WIDTHS = {
    "Y": (4, 4), "m": (2, 2), "d": (2, 2), "H": (2, 2), "M": (2, 2), "S": (2, 2),
    "y": (2, 2), "f": (1, 6), "j": (3, 3),
}  # fmt: skip
_TIME_FIELDS = {"started", "started_at"}


@dataclass(frozen=True)
class _Part:
    """Literal text (``name`` empty), a field, or a time field (``time`` set)."""

    text: str = ""
    name: str = ""
    time: re.Pattern[str] | None = None
    widths: tuple[int, ...] = ()  # the lengths a time field can have, longest first


@dataclass(frozen=True)
class FilenamePattern:
    """A compiled file-name pattern. Build it with :meth:`compile`."""

    pattern: str
    parts: tuple[_Part, ...]
    time_formats: dict[str, str]

    @classmethod
    def compile(cls, pattern: str) -> FilenamePattern:
        """Raises:
        ValueError: The pattern names a field twice, has no ``call_id``, or uses a time
            directive without a fixed width.
        """
        parts: list[_Part] = []
        formats: dict[str, str] = {}
        position = 0
        for match in _FIELD.finditer(pattern):
            parts.append(_Part(text=pattern[position : match.start()]))
            name, time_format = match["name"], match["format"]
            if name in {part.name for part in parts}:
                raise ValueError(f"filename pattern names {{{name}}} twice: {quoted(pattern)}")
            if time_format:
                if name not in _TIME_FIELDS:
                    raise ValueError(f"only {{started:FORMAT}} takes a format, not {{{name}}}")
                formats[name] = time_format
                parts.append(_time_part(name, time_format))
            else:
                parts.append(_Part(name=name))
            position = match.end()
        parts.append(_Part(text=pattern[position:]))
        if "call_id" not in {part.name for part in parts}:
            raise ValueError(f"filename pattern has no {{call_id}}: {quoted(pattern)}")
        kept = tuple(part for part in parts if part.name or part.text)
        return cls(pattern=pattern, parts=kept, time_formats=formats)

    def parse(self, filename: str) -> dict[str, object]:
        """The fields in ``filename`` (the base name of an object key or path).

        Raises:
            MetadataError: The name does not match the pattern or its time is not a real time.
        """
        fields: dict[str, object] = dict(_match(self.parts, filename) or {})
        shown = quoted(filename)
        if not fields:
            message = f"file name {shown} does not match the pattern {quoted(self.pattern)}"
            raise MetadataError(message)
        for name, time_format in self.time_formats.items():
            try:
                fields[name] = datetime.strptime(str(fields[name]), time_format)
            except ValueError:
                raise MetadataError(
                    f"file name {shown}: {quoted(fields[name])} is not a time of the form "
                    f"{quoted(time_format)}",
                    field="started_at",
                ) from None
        return fields


def _time_part(name: str, time_format: str) -> _Part:
    """A time field: digits of the directives' widths between the format's literal text."""
    regex, low, high, index = [], 0, 0, 0
    while index < len(time_format):
        char = time_format[index]
        if char == "%" and index + 1 < len(time_format) and time_format[index + 1] != "%":
            directive = time_format[index + 1]
            if directive not in _WIDTHS:
                shown = "%" + directive if directive.isprintable() else quoted("%" + directive)
                raise ValueError(f"time directive {shown} is not supported in file names")
            least, most = _WIDTHS[directive]
            regex.append(rf"\d{{{least},{most}}}")
            low, high, index = low + least, high + most, index + 2
        else:
            regex.append(re.escape(char))
            low, high = low + 1, high + 1
            index += 2 if time_format[index : index + 2] == "%%" else 1
    widths = tuple(range(high, low - 1, -1))  # longest first, as the greedy regex read it
    return _Part(name=name, time=re.compile("".join(regex)), widths=widths)


def _match(parts: tuple[_Part, ...], name: str) -> dict[str, str] | None:
    """The fields of ``name``, or None when it does not match.

    ``ends[i][p]`` says whether ``parts[i:]`` match ``name[p:]`` exactly; it is filled from the
    last part back, so each field can then take its shortest possible text in one pass.
    """
    size = len(name)
    slash = [size] * (size + 2)  # slash[p]: the first "/" at or after p (fields hold none)
    for p in range(size - 1, -1, -1):
        slash[p] = p if name[p] == "/" else slash[p + 1]
    ends = [[False] * (size + 1) for _ in parts] + [[p == size for p in range(size + 1)]]
    nexts = [_next_true(row) for row in ends]
    for i in range(len(parts) - 1, -1, -1):
        for p in range(size + 1):
            ends[i][p] = _end(parts[i], name, p, ends[i + 1], nexts[i + 1], slash) is not None
        nexts[i] = _next_true(ends[i])
    if not ends[0][0]:
        return None
    fields, p = {}, 0
    for i, part in enumerate(parts):
        end = _end(part, name, p, ends[i + 1], nexts[i + 1], slash)
        assert end is not None  # ends[i][p] held
        if part.name:
            fields[part.name] = name[p:end]
        p = end
    return fields


def _end(
    part: _Part, name: str, p: int, after: list[bool], nxt: list[int], slash: list[int]
) -> int | None:
    """Where ``part`` ends when it starts at ``p`` and the parts after it can still match."""
    if not part.name:
        end = p + len(part.text)
        return end if name.startswith(part.text, p) and after[end] else None
    if part.time is None:  # the shortest non-empty text without "/" that the rest accepts
        end = nxt[p + 1] if p < len(name) else len(name) + 1
        return end if end <= slash[p] else None
    for width in part.widths:
        end = p + width
        if end <= len(name) and after[end] and part.time.fullmatch(name, p, end):
            return end
    return None


def _next_true(row: list[bool]) -> list[int]:
    """For each position, the first position at or after it where ``row`` is True (else
    ``len(row)``, past the end), so "the shortest field that works" is one lookup."""
    found = [len(row)] * (len(row) + 1)
    for p in range(len(row) - 1, -1, -1):
        found[p] = p if row[p] else found[p + 1]
    return found
