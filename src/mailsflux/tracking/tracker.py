"""The sender's side of tracking: rewrite a message's links, add the pixel,
and make the unsubscribe URL and headers.

One :class:`Tracker` per job (it holds the key ring); per recipient call
:meth:`Tracker.rewrite_html` and :meth:`Tracker.rewrite_text` (both compiled)
and :meth:`Tracker.unsubscribe_headers`.  The tracking server verifies with the
same key ring (:class:`mailsflux.tracking.tokens.TokenVerifier`).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Final

from mailsflux.errors import ConfigError, HeaderError
from mailsflux.tracking._rewrite import Rewriter, _trim_url, unsubscribe_value
from mailsflux.tracking.tokens import (
    TokenKind,
    TokenPayload,
    TokenVerifier,
    check_keys,
    token_key,
)

_KIND_CODE: Final[dict[TokenKind, int]] = {"open": 0, "click": 1, "unsubscribe": 2}

#: A base URL: http(s), host[:port], optional path; nothing to escape in HTML.
_BASE = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/%]*)?", re.I)
_MAILTO = re.compile(r"[^\s<>,\"\\\x00-\x1f\x7f]+@[^\s<>,\"\\\x00-\x1f\x7f?]+")


@functools.lru_cache(maxsize=64)
def _plain_mailto(addr: str) -> bool:
    # A job has one unsubscribe mailbox: checked once, not on every message.
    return _MAILTO.fullmatch(addr) is not None


LIST_UNSUBSCRIBE_POST: Final = "List-Unsubscribe=One-Click"


def _unsubscribe_fields(value: str) -> list[tuple[str, str]]:
    """The two header fields of one-click unsubscribe (RFC 8058) for a
    ``List-Unsubscribe`` value."""
    return [("List-Unsubscribe", value), ("List-Unsubscribe-Post", LIST_UNSUBSCRIBE_POST)]


def mailto_address(mailto: str) -> str:
    """The address of an unsubscribe ``mailto`` (``mailto:`` optional), or
    :class:`HeaderError` unless it is a plain address."""
    addr = mailto.removeprefix("mailto:")
    if not _plain_mailto(addr):
        raise HeaderError(
            f"unsubscribe mailto address {mailto!r} is not a plain address",
            field="List-Unsubscribe",
        )
    return addr


def _unsubscribe_value(url: str, token: str, mailto: str | None) -> str:
    """``List-Unsubscribe`` (RFC 2369) for ``url``, ``mailto`` (an address) checked."""
    return unsubscribe_value(url, token, None if mailto is None else mailto_address(mailto))


#: Trims a text-part URL's end (sentence punctuation, unbalanced closing brackets).
_trim = _trim_url


class Tracker:
    """Makes tracked messages: ``base_url`` is where the tracking server answers.

    ``keys`` maps key ids to secret keys (bytes, 32 random bytes each is
    right); ``current_key_id`` seals new tokens, the others still open, so a
    key can be rotated without breaking links already sent.  ``clock`` gives
    the send time stamped into tokens.
    """

    def __init__(
        self,
        base_url: str,
        keys: Mapping[str, bytes],
        current_key_id: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = base_url.strip().rstrip("/")
        if not _BASE.fullmatch(base):
            raise ConfigError(
                f"tracking base URL {base_url!r}: expected http(s)://host[:port][/path], "
                "without query, fragment or characters that need escaping",
                field="base_url",
            )
        ring = check_keys(keys, current_key_id)
        self.base_url = base
        self.key_id = current_key_id
        #: The key ring, for what else the sender seals with it (VERP return paths).
        self.keys: Mapping[str, bytes] = ring
        self.clock = clock
        self._rw = Rewriter(base, current_key_id, token_key(ring[current_key_id]))
        self._verifier = TokenVerifier(ring, clock=clock)

    @property
    def verifier(self) -> TokenVerifier:
        return self._verifier

    @property
    def rewriter(self) -> Rewriter:
        """The compiled part that seals this tracker's tokens, for a caller on
        the per-message path that checked its arguments once (the composer)."""
        return self._rw

    def _sent(self, sent_at: float | None) -> int:
        return int(self.clock() if sent_at is None else sent_at)

    def token(
        self,
        kind: TokenKind,
        *,
        message_id: str,
        recipient: str,
        job: str = "",
        url: str = "",
        sent_at: float | None = None,
    ) -> str:
        """One sealed token."""
        return self._rw.token(
            _KIND_CODE[kind], message_id, recipient, job, self._sent(sent_at), url
        )

    def rewrite_html(
        self,
        html: bytes,
        *,
        message_id: str,
        recipient: str,
        job: str = "",
        unsubscribe_prefix: str | None = None,
        clicks: bool = True,
        opens: bool = True,
        sent_at: float | None = None,
    ) -> bytes:
        """Track an HTML part (UTF-8 bytes): links to ``{base}/c/{token}``, and
        the open pixel before ``</body>`` (or at the end).

        Rewritten: the ``href`` of ``<a>``, ``<area>`` and VML ``<v:...>``
        elements (also inside Outlook conditional comments) holding an
        http(s) URL.  Left alone: other schemes, fragments, our own URLs,
        links starting with ``unsubscribe_prefix``, links marked
        ``data-mf-unsubscribe``, and links marked ``data-mf-notrack`` (that
        attribute is removed).  Everything else is copied byte for byte.
        """
        skip = unsubscribe_prefix.encode("utf-8") if unsubscribe_prefix else None
        return self._rw.rewrite_html(
            html, message_id, recipient, job, self._sent(sent_at), skip, clicks, opens
        )

    def rewrite_text(
        self,
        text: bytes,
        *,
        message_id: str,
        recipient: str,
        job: str = "",
        unsubscribe_prefix: str | None = None,
        sent_at: float | None = None,
    ) -> bytes:
        """Track the http(s) URLs of a text part (UTF-8 bytes): each URL that
        ``\\bhttps?://[^\\s<>"'`]+`` (any case) finds, less trailing
        punctuation and unbalanced closing brackets, goes through
        ``{base}/c/{token}``. Left alone: our own URLs, those starting with
        ``unsubscribe_prefix``, and those no token can hold."""
        return self._rw.rewrite_text(
            text, message_id, recipient, job, self._sent(sent_at), unsubscribe_prefix or None
        )

    def click_url(
        self,
        url: str,
        *,
        message_id: str,
        recipient: str,
        job: str = "",
        sent_at: float | None = None,
    ) -> str:
        tok = self.token(
            "click", message_id=message_id, recipient=recipient, job=job, url=url, sent_at=sent_at
        )
        return f"{self.base_url}/c/{tok}"

    def unsubscribe_url(self, message_id: str, recipient: str, job: str = "") -> str:
        """The one-click unsubscribe URL: for ``List-Unsubscribe`` and the visible link.

        A GET shows a confirmation page (no state change, so link scanners
        cannot unsubscribe anyone); a POST unsubscribes (RFC 8058).
        """
        return self.unsubscribe_pair(message_id, recipient, job)[0]

    def preferences_url(self, recipient: str, job: str = "") -> str:
        """The recipient's preference page (``{{preferences_url}}`` in templates):
        the lists they get from this sender, and their objection to tracking.
        The token is sealed, so the address cannot be read from the link."""
        tok = self._verifier.preferences_token(self.key_id, recipient, job, int(self.clock()))
        return f"{self.base_url}/p/{tok}"

    def unsubscribe_headers(
        self, message_id: str, recipient: str, job: str = "", *, mailto: str | None = None
    ) -> list[tuple[str, str]]:
        """``List-Unsubscribe`` (RFC 2369) and ``List-Unsubscribe-Post`` (RFC 8058).

        ``mailto`` (an address) adds a ``mailto:`` alternative whose subject
        carries the token.  Both headers must be covered by the DKIM
        signature for one-click unsubscribe to be honoured by receivers.
        The values hold no CR or LF; they are not folded.
        """
        _, value = self.unsubscribe_pair(message_id, recipient, job, mailto=mailto)
        return _unsubscribe_fields(value)

    def list_unsubscribe(self, url: str, *, mailto: str | None = None) -> list[tuple[str, str]]:
        """The headers of :meth:`unsubscribe_headers` for a URL that
        :meth:`unsubscribe_url` made, so a message's visible link and its
        header carry one token, made once."""
        return _unsubscribe_fields(_unsubscribe_value(url, url.rpartition("/u/")[2], mailto))

    def unsubscribe_pair(
        self, message_id: str, recipient: str, job: str = "", *, mailto: str | None = None
    ) -> tuple[str, str]:
        """:meth:`unsubscribe_url` and the ``List-Unsubscribe`` value of
        :meth:`list_unsubscribe` for it, with one token: what a composer
        needs for every message, in one call instead of five."""
        addr = None if mailto is None else mailto_address(mailto)
        return self._rw.unsubscribe_pair(message_id, recipient, job, int(self.clock()), addr)

    def decode(self, token: str, kind: TokenKind | None = None) -> TokenPayload | None:
        """Open a token (any key of the ring); ``None`` unless genuine."""
        return self._verifier.decode(token, kind)


__all__ = ["LIST_UNSUBSCRIBE_POST", "Tracker", "mailto_address"]
