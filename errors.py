"""The one root of every error callrec raises on purpose.

Each error reads "what failed — what to do" and carries the fields a caller needs to act on it
(bucket, key, call id...), so the CLI can print it as one line and a log keeps the context.
"""

from __future__ import annotations


class CallrecError(Exception):
    """Root of callrec's own errors: anything else reaching the CLI is a bug."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class SettingsError(CallrecError):
    """A setting is missing, mistyped or unknown; raised before anything starts."""
