"""What every inbound callback shares: the answer, the log row (every request, accepted or not),
the freshness check, and the replay guard (a unique key claimed by the first verified delivery)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.channels.models import InboundMessage
from siyu.core import clock

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# A callback's timestamp further than this from now is refused (a replayed capture, a wrong clock).
MAX_SKEW = dt.timedelta(minutes=5)
SUCCESS = "success"


@dataclasses.dataclass(frozen=True)
class CallbackResult:
    """How to answer WeChat: `status_code` and the text body ("success", an echo, or "" on refusal)."""

    status_code: int
    text: str
    outcome: str
    log_id: int | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status_code < 300


class Rejected(Exception):
    """The request is refused: answered with `status_code`, logged, nothing else changes."""

    def __init__(self, reason: str, status_code: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


def clean(text: str | None, limit: int) -> str:
    return (text or "").replace("\x00", "")[:limit]


def fresh(timestamp: str | None) -> bool:
    """The callback's Unix timestamp is within MAX_SKEW of now."""
    if not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    sent = dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)
    return abs(clock.now() - sent) <= MAX_SKEW


def dedupe_key(fields: dict[str, str], *parts: str) -> str:
    """MsgId for messages; for events, the sender, the creation time, the event and the given parts.
    Long keys are hashed to fit the column."""
    msg_id = fields.get("MsgId", "").strip()
    if msg_id:
        key = f"msg:{msg_id}"
    else:
        key = ":".join(["evt", fields.get("FromUserName", ""), fields.get("CreateTime", ""), fields.get("Event", ""),
                        *parts])
    if len(key) > 200:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def new_entry(*, merchant_id: int, channel: str, body: bytes) -> InboundMessage:
    return InboundMessage(merchant_id=merchant_id, channel=channel, verified=False, outcome="rejected",
                          body=clean(body[:MAX_BODY_BYTES].decode("utf-8", errors="replace"), MAX_BODY_BYTES),
                          received_at=clock.now(), details={})


def describe(entry: InboundMessage, fields: dict[str, str], *, plaintext: str, encrypted: bool) -> None:
    """Fill a verified entry from its message."""
    entry.verified = True
    entry.encrypted = encrypted
    entry.body = clean(plaintext, MAX_BODY_BYTES)
    entry.msg_type = clean(fields.get("MsgType"), 40)
    entry.event = clean(fields.get("ChangeType") or fields.get("Event"), 60)
    entry.from_user = clean(fields.get("ExternalUserID") or fields.get("FromUserName"), 128)


def claim(session: Session, entry: InboundMessage, key: str, *, timestamp: str, nonce: str) -> InboundMessage | None:
    """Store the entry holding `key` (and its timestamp + nonce); None when both are fresh. When an
    earlier delivery holds the key, the earlier one is returned (a replay: the caller logs a duplicate).
    A concurrent delivery of the same message waits on the unique key until the first commits (or rolls
    back). Raises Rejected when only the timestamp + nonce were used before: a captured signature
    reused for another message."""
    entry.claimed_key = key
    entry.dedupe_key = key
    entry.nonce_key = f"{timestamp}:{nonce}"[:120]
    entry.outcome = "processing"
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
        return None
    except IntegrityError:
        pass
    # The savepoint's rollback expelled the entry from the session; the caller logs a fresh copy.
    first = session.scalars(select(InboundMessage).where(
        InboundMessage.merchant_id == entry.merchant_id, InboundMessage.channel == entry.channel,
        InboundMessage.dedupe_key == key)).first()
    if first is not None:
        return first
    raise Rejected("timestamp and nonce already used by another message", 403)


def finish(session: Session, entry: InboundMessage, *, outcome: str, status_code: int, text: str = SUCCESS,
           error: str | None = None, details: dict[str, Any] | None = None) -> CallbackResult:
    entry.outcome = outcome
    entry.error = clean(error, 500) if error else None
    if details:
        entry.details = {**(entry.details or {}), **details}
    if entry.id is None:
        session.add(entry)
    session.flush()
    if outcome == "rejected":
        log.warning("%s callback %s rejected (%s, merchant %s)", entry.channel, entry.id, error, entry.merchant_id)
    return CallbackResult(status_code=status_code, text=text, outcome=outcome, log_id=entry.id, error=error)


def _unkeyed_copy(entry: InboundMessage, **changes: Any) -> InboundMessage:
    return InboundMessage(merchant_id=entry.merchant_id, channel=entry.channel, dedupe_key=None, nonce_key=None,
                          claimed_key=entry.claimed_key, verified=entry.verified, encrypted=entry.encrypted,
                          msg_type=entry.msg_type, event=entry.event, from_user=entry.from_user, body=entry.body,
                          details={}, received_at=entry.received_at, **changes)


def duplicate(session: Session, entry: InboundMessage, first: InboundMessage) -> CallbackResult:
    """Log a replay (its own row, without the keys) and answer it as WeChat expects: success."""
    copy = _unkeyed_copy(entry, duplicate_of_id=first.id, outcome="duplicate")
    return finish(session, copy, outcome="duplicate", status_code=200)


def refused_claim(session: Session, entry: InboundMessage, exc: Rejected) -> CallbackResult:
    """Log a delivery whose claim was refused (a reused signature) and answer the refusal."""
    copy = _unkeyed_copy(entry, outcome="rejected")
    return finish(session, copy, outcome="rejected", status_code=exc.status_code, text="", error=exc.reason)
