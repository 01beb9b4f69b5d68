"""Who may read what: the roles of the privacy statement, enforced where data is read.

Every function that reads call data takes a :class:`Viewer` and applies these rules itself, so a
page, a CLI flag or a typed URL cannot get around them by skipping a button:

- team lead: the calls of their own team(s) only; full text (they coach on what was said).
- complaint handler: any call, found by customer, number or date; full text and audio.
- analyst: transcripts with personal data redacted, aggregates; no audio, no lookup by
  customer or policy number, no unredacted text anywhere.
- admin (privacy officer): everything, for access and erasure requests and audits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import col

from errors import CallrecError
from storage.catalogue import Call


class Role(StrEnum):
    TEAM_LEAD = "team_lead"
    COMPLAINT_HANDLER = "complaint_handler"
    ANALYST = "analyst"
    ADMIN = "admin"


class AccessDeniedError(CallrecError):
    """The viewer's role does not allow this; the message says which role would."""


@dataclass(frozen=True)
class Viewer:
    """A signed-in user (or the operator at the command line) as the read functions see them."""

    name: str
    role: Role
    teams: tuple[str, ...] = field(default=())

    @property
    def sees_personal_data(self) -> bool:
        """Unredacted text, customer and policy numbers: everyone but the analyst."""
        return self.role is not Role.ANALYST

    @property
    def may_play_audio(self) -> bool:
        return self.role is not Role.ANALYST

    def call_scope(self) -> sa.ColumnElement[bool]:
        """The SQL condition on ``calls`` for the calls this viewer may see."""
        if self.role is Role.TEAM_LEAD:
            return col(Call.team).in_(self.teams) if self.teams else sa.false()
        return sa.true()

    def may_see(self, call: Call) -> bool:
        """The same rule as :meth:`call_scope`, for one loaded call."""
        return self.role is not Role.TEAM_LEAD or call.team in self.teams

    def require_personal_data(self, what: str) -> None:
        """Refuse a request that would reveal personal data to a role that may not see it."""
        if not self.sees_personal_data:
            raise AccessDeniedError(
                f"{what} is not available to the {self.role} role",
                hint="analysts work with redacted transcripts and aggregates",
            )


def require_role(viewer: Viewer, *roles: Role, what: str) -> None:
    """Refuse ``what`` (e.g. "exporting a call") to a viewer whose role is not one of ``roles``.

    Raises:
        AccessDeniedError: Naming the refused role and the roles that may.
    """
    if viewer.role not in roles:
        raise AccessDeniedError(
            f"{what} is not available to the {viewer.role} role",
            hint=f"it is for the role(s) {', '.join(roles)}",
        )
