"""Access and erasure requests about one customer: the privacy statement's two promises that a
customer can have a copy of everything held on them and can have it erased.

A customer is found by the number they called from or were called on, normalised exactly as
ingest normalised it (``CALLREC_PHONE_REGION``), so ``0612345678`` and ``+31612345678`` find the
same calls. The audit trail records the calls a request touched and the operator's reason, never
the customer's number; a reason that contains the number is refused for that reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import cast

import phonenumbers
import sqlalchemy as sa
from sqlmodel import col, select

from errors import CallrecError
from ingest.metadata import MetadataError, MetadataOptions, parse_metadata
from settings import Settings
from storage.audit import Action
from storage.catalogue import Call, CallState, Hold, metadata
from storage.connect import Storage
from storage.exports import ExportResult, create_export
from storage.purge import erase_calls

_ERASE_PREFIX = "erasure request: "
# An erasure's reason ends up in the tombstones, whose column bounds it.
_TOMBSTONE_REASON = cast(sa.String, metadata.tables["tombstones"].c.reason.type)
_MAX_REASON = (_TOMBSTONE_REASON.length or 0) - len(_ERASE_PREFIX)


def customer_number(text: str, settings: Settings) -> str:
    """The E.164 form of a number typed in any form ingest accepts.

    Raises:
        CallrecError: It is not a phone number (or is a withheld-caller placeholder).
    """
    probe = {"call_id": "lookup", "started_at": datetime(2000, 1, 1, tzinfo=UTC)}
    try:
        number = parse_metadata(
            {**probe, "customer_number": text},
            options=MetadataOptions(default_region=settings.phone_region),
        ).customer_number
    except MetadataError:
        number = None
    if number is None:
        raise CallrecError(
            f"{text!r} is not a phone number",
            hint=f"give it as +31612345678 or in the national form of {settings.phone_region}",
        )
    return number


def customer_calls(storage: Storage, number: str, *, include_erasing: bool = False) -> list[Call]:
    """Every call of the customer, oldest first.

    Args:
        number: In any form :func:`customer_number` accepts.
        include_erasing: Also calls an interrupted erasure left half-done (an erasure request
            finishes them; an export cannot include them).

    Raises:
        CallrecError: The number is not a phone number, or no call has it.
    """
    e164 = customer_number(number, storage.settings)
    query = select(Call).where(Call.customer_number == e164)
    if not include_erasing:
        query = query.where(Call.state != CallState.ERASING)
    with storage.catalogue.session() as session:
        calls = list(session.exec(query.order_by(col(Call.started_at), col(Call.id))))
    if not calls:
        raise CallrecError(
            f"no calls of customer {e164}",
            hint="check the number; calls already erased are not kept, not even their number",
        )
    return calls


def export_customer(
    storage: Storage, customer: str, *, actor: str, reason: str, now: datetime
) -> ExportResult:
    """Answer an access request: every call of the customer in one zip behind a link that
    expires after ``CALLREC_EXPORT_TTL_S``.

    Args:
        customer: The customer's number, national or international.
        reason: Why (a ticket number), for the audit trail: never the number or a name.

    Raises:
        CallrecError: Unknown number, no calls, or a reason that is blank or holds the number.
        ObjectStoreError: S3 failed; no export is left behind.
    """
    calls = customer_calls(storage, customer)
    e164 = calls[0].customer_number or ""
    return create_export(
        storage,
        calls,
        kind="customer",
        subject=f"every recorded call of customer number {e164}",
        reason=_checked_reason(reason, e164),
        actor=actor,
        now=now,
    )


def erase_customer(
    storage: Storage, customer: str, *, reason: str, actor: str, now: datetime
) -> list[str]:
    """Answer an erasure request: erase every call of the customer now, with the exports that
    hold them, leaving tombstones and audit events that name only the call ids.

    A call under an active hold (a complaint, a dispute) must be kept, so the whole request is
    refused until the hold is released rather than erasing part of it silently.

    Returns:
        The erased call ids, oldest call first.

    Raises:
        CallrecError: Unknown number, no calls, a blank reason or one holding the number, or a
            call under an active hold (nothing is erased then).
    """
    calls = customer_calls(storage, customer, include_erasing=True)
    why = _checked_reason(reason, calls[0].customer_number or "")
    ids = [call.id for call in calls]
    with storage.catalogue.session() as session:
        held = sorted(
            set(
                session.exec(
                    select(Hold.call_id).where(
                        col(Hold.call_id).in_(ids), col(Hold.released_at).is_(None)
                    )
                )
            )
        )
    if held:
        raise CallrecError(
            f"{len(held)} of the customer's {len(calls)} calls are under an active hold: "
            + ", ".join(held),
            hint="release the hold first; nothing was erased",
        )
    erased, _ = erase_calls(
        storage,
        calls,
        now=now,
        reason=_ERASE_PREFIX + why,
        actor=actor,
        action=Action.ERASE,
    )
    return erased


def _checked_reason(reason: str, e164: str) -> str:
    """The reason is kept in the audit trail (and an erasure's in the tombstone), which must not
    identify the customer: refuse one that is blank, too long or holds their number."""
    reason = reason.strip()
    if not reason:
        raise CallrecError("the reason is blank", hint="give a ticket or request number")
    if len(reason) > _MAX_REASON:
        raise CallrecError(
            f"the reason is {len(reason)} characters long",
            hint=f"keep it to {_MAX_REASON}: a ticket or request number",
        )
    national = str(phonenumbers.national_significant_number(phonenumbers.parse(e164)))
    if national in re.sub(r"\D", "", reason):
        raise CallrecError(
            "the reason contains the customer's number, and the audit trail must not",
            hint="give a ticket or request number instead",
        )
    return reason
