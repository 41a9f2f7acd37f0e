"""Unicode domains to A-labels: IDNA 2008 with UTS 46 non-transitional mapping.

Python's ``"idna"`` codec is IDNA 2003, which maps ``ß`` to ``ss``,
``ς`` (final sigma) to a medial one and drops ZWJ/ZWNJ: ``straße.de`` becomes
``strasse.de``, another registrant's domain. IDNA 2008 (RFC 5891) with the
UTS 46 non-transitional mapping (what browsers and registries use, and what
dnspython's ``IDNA_2008_Practical`` does for MX lookups) keeps them:
``straße.de`` is ``xn--strae-oqa.de``.

ASCII labels pass through lower-cased and unchecked here (callers check
them against their own label syntax: DKIM selectors may hold ``_``); only
non-ASCII labels go through the ``idna`` package, which is pure Python.
"""

from __future__ import annotations

import idna


def to_ascii(domain: str) -> str:
    """``domain`` with every non-ASCII label as its A-label, lower case.

    Raises ``ValueError`` (``idna.IDNAError``) saying why a label is not a
    valid IDNA 2008 label (a disallowed code point, a joiner out of context,
    a bidi rule broken, too long).
    """
    if domain.isascii():
        return domain.lower()
    mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
    return ".".join(
        label if label.isascii() else idna.alabel(label).decode("ascii")
        for label in mapped.split(".")
    )


__all__ = ["to_ascii"]
