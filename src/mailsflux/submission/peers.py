"""What the listener needs from the rest of Mailsflux: a key store that
turns an SMTP login into a principal, and a gateway that makes a message
durable. Structural types, so the listener depends on two methods each and
not on how tenants, keys and the spool are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Principal(Protocol):
    """Who a login is: a tenant's key with its roles."""

    @property
    def tenant(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    @property
    def roles(self) -> frozenset[str]: ...


class Keys(Protocol):
    def login(self, username: str, password: str) -> Principal | None:
        """The principal for these credentials, or None (slow hash; may block)."""
        ...


class Gateway(Protocol):
    def sender_allowed(self, principal: Principal, address: str) -> bool:
        """True when the principal's tenant may send from ``address``."""
        ...

    async def accept_raw(
        self, principal: Principal, mail_from: str, rcpt_to: Sequence[str], data: bytes
    ) -> list[str]:
        """DKIM-sign and spool one copy per recipient; return the message ids
        once they are durable. Raises :class:`mailsflux.errors.MailsfluxError`."""
        ...


__all__ = ["Gateway", "Keys", "Principal"]
