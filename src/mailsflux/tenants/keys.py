"""API keys and SMTP credentials: Argon2id-hashed, shown once, revocable.

A key is ``mfx.<id>.<secret>`` (HTTP ``Authorization: Bearer``); an SMTP
credential is the id as user name and the secret as password. The id is
looked up (it is not secret); the secret is checked against its Argon2id
hash (RFC 9106), slow on purpose. A secret once verified is remembered by
its HMAC under a key that lives only in this process, so later requests
cost one compare (constant time), not a hash; a revoked key fails at once,
in every process, because its row is read on every check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailsflux.errors import ConfigError

ROLES = ("send", "read", "admin")
KeyKind = Literal["api", "smtp"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    roles TEXT NOT NULL,
    label TEXT NOT NULL,
    hash TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS cancelled (
    tenant TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""


class Principal(msgspec.Struct, frozen=True):
    """Who is asking: the key's tenant, the key, and what it may do."""

    tenant: str
    key_id: str
    roles: frozenset[str]

    def may(self, role: str) -> bool:
        """``admin`` may do everything."""
        return role in self.roles or "admin" in self.roles


class KeyInfo(msgspec.Struct, frozen=True):
    """A key as listed: never its secret."""

    id: str
    tenant: str
    kind: str
    roles: tuple[str, ...]
    label: str
    created: float
    revoked: float | None = None


class KeyStore:
    """The keys of every tenant, in one SQLite file (0600)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not self.path.exists()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if new:
            self.path.chmod(0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._hasher = PasswordHasher()
        self._pepper = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(
        self, tenant: str, roles: Iterable[str], *, kind: KeyKind = "api", label: str = ""
    ) -> tuple[KeyInfo, str]:
        """A new key: its info and the secret to show once (a token for
        ``api``, the password for ``smtp``)."""
        wanted = tuple(sorted(set(roles)))
        bad = [r for r in wanted if r not in ROLES]
        if bad or not wanted:
            raise ConfigError(
                f"roles must be some of {', '.join(ROLES)}, got {', '.join(bad) or 'none'}",
                field="role",
            )
        key_id = f"{kind}_{secrets.token_hex(6)}"
        secret = secrets.token_urlsafe(24)
        info = KeyInfo(
            id=key_id, tenant=tenant, kind=kind, roles=wanted, label=label, created=time.time()
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    key_id,
                    tenant,
                    kind,
                    ",".join(wanted),
                    label,
                    self._hasher.hash(secret),
                    info.created,
                ),
            )
        return info, (f"mfx.{key_id}.{secret}" if kind == "api" else secret)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of an API token, or None (unknown, wrong or revoked)."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "mfx":
            return None
        return self._check(parts[1], parts[2], "api")

    def login(self, username: str, password: str) -> Principal | None:
        """The principal of an SMTP user name (the key id) and password, or None."""
        return self._check(username, password, "smtp")

    def warm(self, token: str) -> bool:
        """Whether :meth:`authenticate` will answer without hashing: the token
        is malformed, or it is the very secret verified before (call it in a
        thread otherwise: a hash takes tens of milliseconds; a wrong secret
        for a known id is not warm, so it cannot stall the caller's loop)."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "mfx":
            return True
        known = self._verified.get(parts[1])
        return known is not None and hmac.compare_digest(known, self._mac(parts[1], parts[2]))

    def _mac(self, key_id: str, secret: str) -> bytes:
        return hmac.new(self._pepper, f"{key_id}\x00{secret}".encode(), hashlib.sha256).digest()

    def _check(self, key_id: str, secret: str, kind: str) -> Principal | None:
        with self._lock:
            row = self._db.execute(
                "SELECT tenant, kind, roles, hash, revoked FROM keys WHERE id = ?", (key_id,)
            ).fetchone()
        if row is None or row[1] != kind or row[4] is not None:
            return None
        tenant, _, roles, hashed, _ = row
        mac = self._mac(key_id, secret)
        known = self._verified.get(key_id)
        if known is None or not hmac.compare_digest(known, mac):
            try:
                self._hasher.verify(hashed, secret)
            except (VerificationError, InvalidHashError):
                return None
            self._verified[key_id] = mac
        return Principal(tenant=tenant, key_id=key_id, roles=frozenset(roles.split(",")))

    def revoke(self, key_id: str, *, tenant: str | None = None) -> bool:
        """Revoke a key (only ``tenant``'s when given); False if there is none."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL"
                " AND (? IS NULL OR tenant = ?)",
                (time.time(), key_id, tenant, tenant),
            )
        self._verified.pop(key_id, None)
        return cur.rowcount > 0

    # -- cancelled tenants (their data is deleted after [retention] account_days) --

    def cancel_tenant(self, tenant: str, at: float | None = None) -> int:
        """Cancel ``tenant``: every key of its is revoked now, and the date
        is kept for the sweep that deletes its data later. Returns the keys revoked."""
        when = time.time() if at is None else at
        with self._lock:
            n = self._db.execute(
                "UPDATE keys SET revoked = ? WHERE tenant = ? AND revoked IS NULL", (when, tenant)
            ).rowcount
            self._db.execute("INSERT OR IGNORE INTO cancelled VALUES (?, ?)", (tenant, when))
        self._verified.clear()
        return int(n)

    def restore_tenant(self, tenant: str) -> bool:
        """Take a cancellation back (its keys stay revoked: make new ones)."""
        with self._lock:
            return (
                self._db.execute("DELETE FROM cancelled WHERE tenant = ?", (tenant,)).rowcount > 0
            )

    def cancelled_tenants(self) -> dict[str, float]:
        with self._lock:
            return dict(self._db.execute("SELECT tenant, at FROM cancelled").fetchall())

    def forget_tenant(self, tenant: str) -> int:
        """A cancelled tenant's data is gone: its keys (account data) go too."""
        with self._lock:
            n = self._db.execute("DELETE FROM keys WHERE tenant = ?", (tenant,)).rowcount
            self._db.execute("DELETE FROM cancelled WHERE tenant = ?", (tenant,))
        return int(n)

    def list(self, tenant: str | None = None) -> list[KeyInfo]:
        sql = "SELECT id, tenant, kind, roles, label, created, revoked FROM keys"
        args: tuple[str, ...] = ()
        if tenant is not None:
            sql, args = sql + " WHERE tenant = ?", (tenant,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created", args).fetchall()
        return [
            KeyInfo(
                id=r[0],
                tenant=r[1],
                kind=r[2],
                roles=tuple(r[3].split(",")),
                label=r[4],
                created=r[5],
                revoked=r[6],
            )
            for r in rows
        ]
