"""Tenants and their keys: who may send from which domains, and read what.

A tenant owns sending domains (with their DKIM keys), a region (where its
data is stored) and its data. API keys and SMTP credentials belong to one
tenant and carry roles (``send``, ``read``, ``admin``); they are stored as
Argon2id hashes, shown once when created, and revocable. A single-user
setup has one tenant, ``default``, that may send from any domain.
"""

from mailsflux.tenants.keys import ROLES, KeyInfo, KeyKind, KeyStore, Principal
from mailsflux.tenants.tenant import DEFAULT_TENANT, Tenant, Tenants, WebhookSpec

__all__ = [
    "DEFAULT_TENANT",
    "ROLES",
    "KeyInfo",
    "KeyKind",
    "KeyStore",
    "Principal",
    "Tenant",
    "Tenants",
    "WebhookSpec",
]
