"""A webhook request's path: configured or 404, body bounded, checked, read, recorded, answered.

A provider retries whatever is not answered with a 2xx, so the answer is 200 only once every
event is stored; a failure on the way is a 5xx and the provider comes back (a replayed event
is recorded once, by its key). A request that is not the provider's (401 unsigned, 403
badly signed) or cannot be read (400, 413) changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from syndicate.feedback.model import Feedback, Provider
from syndicate.feedback.record import FeedbackRules, Recorded, record_feedback
from syndicate.observe.logs import logfmt
from syndicate.web.webhooks.payload import Malformed

log = logging.getLogger(__name__)

# SNS messages are at most 256 KB and SendGrid posts its batches at about 768 KB; a body past
# this is no provider's, and is refused before it is read whole.
MAX_BODY = 4 * 1024 * 1024
NO_STORE = {"cache-control": "no-store"}


@dataclass(frozen=True, slots=True)
class Outside:
    """What the webhooks reach beyond the request: other hosts (Amazon's), and the time."""

    transport: httpx.AsyncBaseTransport | None = None  # None: the network itself
    clock: Callable[[], float] = time.time  # seconds since 1970

    def now(self) -> datetime:
        """The clock's time as an aware datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)


class Refused(Exception):
    """The request is refused with `status`: 401 unsigned, 403 badly signed, 503 try again."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        """Refuse with `status`, saying `reason`; `headers` go with the answer."""
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class Events:
    """What one request carried: the feedback to record, and why the other events were left."""

    feedback: tuple[Feedback, ...] = ()
    ignored: tuple[str, ...] = ()  # one reason per event that is no bounce, complaint or delivery
    note: str = ""  # what the request did besides, "subscription confirmed"


class Webhook(Protocol):
    """One provider's webhook: whether its secret is set, and reading a request it signed."""

    provider: Provider

    @property
    def configured(self) -> bool:
        """True when its secret is set in [bounces.webhooks]."""
        ...

    async def read(self, headers: Headers, body: bytes) -> Events:
        """The events of a request, or Refused (not the provider's) or Malformed (unreadable)."""
        ...


Endpoint = Callable[[Request], Awaitable[Response]]


def webhook_endpoint(hook: Webhook, engine: Engine, rules: FeedbackRules) -> Endpoint:
    """The POST handler for `hook`, recording into `engine` by `rules`."""

    async def receive(request: Request) -> Response:
        """Check, read and record one provider request; 200 once every event is stored."""
        if not hook.configured:
            return _answer(404, {"error": f"the {hook.provider} webhook is not configured"})
        try:
            events = await hook.read(request.headers, await _body(request))
        except Refused as refused:
            log.warning("webhook_refused provider=%s status=%s reason=%s",
                        hook.provider, refused.status, logfmt(refused.reason))  # fmt: skip
            return _answer(refused.status, {"error": refused.reason}, refused.headers)
        except Malformed as malformed:
            log.warning("webhook_malformed provider=%s reason=%s",
                        hook.provider, logfmt(malformed))  # fmt: skip
            return _answer(400, {"error": str(malformed)})
        recorded = await run_in_threadpool(record_all, engine, events.feedback, rules)
        for one in recorded:
            log.info("webhook_event provider=%s key=%s outcome=%s", hook.provider,
                     logfmt(one.feedback.key), logfmt(one.line()))  # fmt: skip
        for reason in events.ignored:
            log.info("webhook_event provider=%s ignored=%s", hook.provider, logfmt(reason))
        new = sum(one.new for one in recorded)
        content: dict[str, object] = {
            "recorded": new,
            "already_recorded": len(recorded) - new,
            "ignored": len(events.ignored),
        }
        if events.note:
            content["note"] = events.note
        return _answer(200, content)

    return receive


def record_all(
    engine: Engine, feedback: Sequence[Feedback], rules: FeedbackRules
) -> list[Recorded]:
    """Record each piece of feedback in turn (each in its own transaction)."""
    return [record_feedback(engine, one, rules) for one in feedback]


async def _body(request: Request) -> bytes:
    """The request's body, or Refused(413) as soon as it is known to pass MAX_BODY."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Refused(413, f"the body is over {MAX_BODY:,} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise Refused(413, f"the body is over {MAX_BODY:,} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refused(400, "the client went away before the body was sent") from None
    return b"".join(chunks)


def _answer(
    status: int, content: Mapping[str, object], headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(content, status_code=status, headers={**NO_STORE, **(headers or {})})
