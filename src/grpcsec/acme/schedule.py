"""When to renew an ACME certificate: inside the CA's renewal window, else at 2/3 of its life.

Pure decisions over values, time passed in (``now``), jitter drawn by the caller (``draw`` in
[0, 1)). When the CA offers ACME Renewal Information (RFC 9773, the directory's
``renewalInfo``), its ``suggestedWindow`` decides: the renewal time is a point drawn uniformly
inside the window (§4.2: "select a uniform random time within the suggested window"), and a
window whose chosen point has already passed means "renew now" (a CA moves the window into the
past to ask for early renewal, e.g. before a mass revocation). Without renewal information
the time is :func:`grpcsec.rotation.renew_plan.renewal_time` (2/3 of the lifetime, jittered),
the same point ``grpcsec renew`` uses.

How often to ask again follows the response's ``Retry-After`` (:func:`next_poll`), kept between
one minute and one day (six hours when absent or unreadable, as RFC 9773 §4.3 suggests).

The window is parsed with the acme library (:class:`acme.messages.RenewalInfo`). The
certificate's ARI identifier (:func:`certificate_id`, §4.1: the authority key identifier and
the serial's DER bytes, each base64url without padding) is computed here because the library
keeps its helper private. Not checked here: the ``explanationURL`` (shown, never fetched).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acme import messages
from cryptography import x509
from josepy.errors import Error as JoseError

from grpcsec.errors import AcmeError
from grpcsec.rotation.renew_plan import renewal_time

__all__ = [
    "DEFAULT_POLL",
    "RenewalWindow",
    "acme_renewal_time",
    "certificate_id",
    "next_poll",
    "parse_renewal_info",
]

DEFAULT_POLL = dt.timedelta(hours=6)
MIN_POLL = dt.timedelta(minutes=1)
MAX_POLL = dt.timedelta(days=1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def certificate_id(leaf: x509.Certificate) -> str:
    """The RFC 9773 identifier of ``leaf`` (``<AKI keyIdentifier>.<serial DER>``, base64url).
    :class:`AcmeError` when it has no authority key identifier (ARI cannot name it)."""
    try:
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound as exc:
        raise AcmeError("the certificate has no authority key identifier (ARI needs it)") from exc
    if aki.key_identifier is None:
        raise AcmeError("the certificate's authority key identifier has no key identifier")
    serial = leaf.serial_number
    length = math.ceil((serial.bit_length() + 1) / 8)  # room for the sign bit, as DER does
    return f"{_b64(aki.key_identifier)}.{_b64(serial.to_bytes(length, 'big', signed=True))}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalWindow:
    """The CA's suggested renewal window for one certificate, and when to ask again."""

    start: dt.datetime
    end: dt.datetime
    explanation_url: str | None = None
    poll_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times RFC 3339 UTC)."""
        return {
            "start": _rfc3339(self.start),
            "end": _rfc3339(self.end),
            "explanation_url": self.explanation_url,
            "poll_at": _rfc3339(self.poll_at),
        }


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def next_poll(retry_after: str | None, now: dt.datetime) -> dt.datetime:
    """When to fetch renewal information again, from a ``Retry-After`` header (seconds or an
    HTTP date), kept within [1 minute, 1 day] after ``now``; 6 hours when absent or bad."""
    delay = DEFAULT_POLL
    text = (retry_after or "").strip()
    if text.isdigit():
        delay = dt.timedelta(seconds=int(text[:9]))
    elif text:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            delay = when - now
    return now + min(max(delay, MIN_POLL), MAX_POLL)


def parse_renewal_info(
    document: Mapping[str, Any], *, now: dt.datetime, retry_after: str | None = None
) -> RenewalWindow:
    """The window of a ``renewalInfo`` response (already decoded JSON). :class:`AcmeError`
    when it has no window, or one that ends before it starts (§4.2: such a response is
    ignored, and the caller keeps its previous plan)."""
    try:
        info = messages.RenewalInfo.from_json(dict(document))
        start, end = info.suggested_window.start, info.suggested_window.end
    except (JoseError, AttributeError, TypeError, ValueError) as exc:
        raise AcmeError(f"the renewal information is malformed: {exc}") from exc
    if start is None or end is None:
        raise AcmeError("the renewal information has no suggestedWindow start and end")
    start, end = start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)
    if end < start:
        raise AcmeError("the renewal information's window ends before it starts")
    explanation = document.get("explanationURL")
    return RenewalWindow(
        start=start,
        end=end,
        explanation_url=explanation if isinstance(explanation, str) else None,
        poll_at=next_poll(retry_after, now),
    )


def acme_renewal_time(
    leaf: x509.Certificate, window: RenewalWindow | None, *, draw: float
) -> dt.datetime:
    """When to renew ``leaf``: the point ``draw`` of the way through the CA's window, or
    without one the 2/3-of-lifetime point (:func:`~grpcsec.rotation.renew_plan.renewal_time`).
    A time in the past means "now"."""
    if window is None:
        return renewal_time(leaf.not_valid_before_utc, leaf.not_valid_after_utc, draw=draw)
    return window.start + (window.end - window.start) * min(max(draw, 0.0), 1.0)
