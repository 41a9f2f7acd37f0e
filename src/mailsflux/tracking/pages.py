"""The pages a recipient sees: unsubscribe, preferences and errors.

Rendered from Mustache templates (``page_templates/*.mustache`` in this package)
with strings from a locale file (``locales/{lang}.json``), chosen by the
request's ``Accept-Language``.  A tenant replaces any template, or adds or
overrides strings and languages, by putting files of the same names in the
directory named by ``[sender] templates`` in the tracking config; the
sender's name, logo URL and colours come from the same table.

Every string is plain text: values (sender, list, masked address, dates)
are put into it first and the template escapes the whole, so nothing a
tenant or a token carries becomes markup.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from mailsflux.compose import Template
from mailsflux.errors import ConfigError

#: The page templates: each a full page, sharing the ``head`` and ``foot`` partials.
PAGES: Final = ("unsubscribe", "preferences", "error")
PARTIALS: Final = ("head", "foot")
#: Languages shipped with the package.
SHIPPED_LANGUAGES: Final = ("en", "de", "fr")

#: Text colours of the shipped templates, fixed so their contrast is known.
TEXT: Final = "#1b1f24"
MUTED: Final = "#4d545e"
CARD: Final = "#ffffff"
#: WCAG 2.x AA for normal text.
AA: Final = 4.5

_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_LANG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class ListInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A list (one job name, or several jobs sharing it) as recipients see it."""

    name: str
    description: str = ""


class SenderSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[sender]`` in the tracking config: who the pages say is writing."""

    name: str = ""
    #: An https image shown at the top of each page (the CSP allows exactly it).
    logo_url: str = ""
    #: Links and buttons; must reach 4.5:1 against white.
    color: str = "#1a56db"
    #: The page around the card; the muted text on it must reach 4.5:1.
    background: str = "#f4f5f7"
    #: Where a person can write when a link no longer works.
    contact: str = ""
    #: A privacy notice linked from every page.
    privacy_url: str = ""
    #: Replacement templates and strings (relative to the config file).
    templates: str = ""
    #: The language used when Accept-Language names none we have.
    language: str = "en"
    #: How long after unsubscribing a person may undo it from the link.
    undo_hours: float = 48.0
    #: Preference links older than this get the "expired" page (0: never).
    #: Unsubscribe links never expire: an opt-out must always work.
    link_days: float = 0.0


def _channel(c: int) -> float:
    s = c / 255.0
    return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4


def parse_colour(value: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` as integers; ``ValueError`` otherwise."""
    m = _HEX.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"{value!r} is not a #rgb or #rrggbb colour")
    h = m.group(1)
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def luminance(colour: str) -> float:
    r, g, b = (_channel(c) for c in parse_colour(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two colours (1 to 21)."""
    la, lb = luminance(a), luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def mask_address(address: str) -> str:
    """``zoe.haddad@example.org`` -> ``z…d@example.org``: enough to recognise, not to harvest."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    local = local.lower()
    shown = local[0] + "…" + local[-1] if len(local) > 2 else local[:1] + "…"
    return f"{shown}@{domain.lower()}" if domain else shown


def negotiate(header: str, available: Mapping[str, object], default: str) -> str:
    """The best language of ``available`` for an ``Accept-Language`` value."""
    wanted: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for prm in params.split(";"):
            k, _, v = prm.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        tag = tag.strip().lower()
        if q > 0 and (tag == "*" or _LANG.fullmatch(tag)):
            wanted.append((-q, i, tag))
    for _, _, tag in sorted(wanted):
        if tag == "*":
            return default
        if tag in available:
            return tag
        primary = tag.split("-", 1)[0]
        if primary in available:
            return primary
    return default


class _Fill(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Locale:
    """One language's strings, with its date format."""

    def __init__(self, lang: str, strings: Mapping[str, Any]) -> None:
        self.lang = lang
        self.strings: dict[str, str] = {k: v for k, v in strings.items() if isinstance(v, str)}
        months = strings.get("months")
        self.months: list[str] = (
            [str(m) for m in months] if isinstance(months, list) and len(months) == 12 else []
        )

    def date(self, ts: float) -> str:
        t = time.gmtime(ts)
        month = self.months[t.tm_mon - 1] if self.months else f"{t.tm_mon:02d}"
        fmt = self.strings.get("date_format", "{day} {month} {year}, {time} UTC")
        return fmt.format_map(
            _Fill(
                day=str(t.tm_mday),
                month=month,
                year=str(t.tm_year),
                time=f"{t.tm_hour:02d}:{t.tm_min:02d}",
            )
        )

    def texts(self, values: Mapping[str, str]) -> dict[str, str]:
        """Every string with ``{name}`` placeholders filled (unknown ones kept)."""
        fill = _Fill(values)
        return {k: _PLACEHOLDER.sub(lambda m: fill[m.group(1)], v) for k, v in self.strings.items()}


def _read_json(path: Path, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read page strings: {exc}", file=str(path), field=where) from None
    if not isinstance(doc, dict):
        raise ConfigError("page strings must be a JSON object", file=str(path), field=where)
    return doc


def _shipped(name: str) -> str:
    return importlib.resources.files("mailsflux.tracking").joinpath(name).read_text("utf-8")


class Pages:
    """The sender's settings, templates and languages, loaded once."""

    def __init__(
        self,
        sender: SenderSpec | None = None,
        lists: Mapping[str, ListInfo] | None = None,
        *,
        base: Path | None = None,
        file: str = "",
    ) -> None:
        s = sender or SenderSpec()
        self.sender = s
        self.lists = dict(lists or {})
        self.file = file
        for field, value in (("color", s.color), ("background", s.background)):
            try:
                parse_colour(value)
            except ValueError as exc:
                raise ConfigError(
                    f"sender.{field}: {exc}", file=file, field=f"sender.{field}"
                ) from None
        # Refused at load, so no tenant setting can make the pages unreadable.
        if contrast(s.color, CARD) < AA:
            raise ConfigError(
                f"sender.color: {s.color} on white is {contrast(s.color, CARD):.2f}:1;"
                f" links and buttons need at least {AA}:1 (WCAG AA): choose a darker colour",
                file=file,
                field="sender.color",
            )
        if contrast(MUTED, s.background) < AA:
            raise ConfigError(
                f"sender.background: the page text on {s.background} is"
                f" {contrast(MUTED, s.background):.2f}:1; it needs at least {AA}:1 (WCAG AA):"
                " choose a lighter background",
                file=file,
                field="sender.background",
            )
        if s.logo_url and not re.fullmatch(r"https://[^\s\"'<>;,]+", s.logo_url):
            raise ConfigError(
                "sender.logo_url: must be an https:// URL without spaces, quotes, ; or ,",
                file=file,
                field="sender.logo_url",
            )
        if s.undo_hours < 0 or s.link_days < 0:
            raise ConfigError(
                "sender.undo_hours, sender.link_days: must not be negative",
                file=file,
                field="sender.undo_hours",
            )
        custom: Path | None = None
        if s.templates:
            custom = (base or Path.cwd()) / s.templates
            if not custom.is_dir():
                raise ConfigError(
                    f"sender.templates: directory {str(custom)!r} not found",
                    file=file,
                    field="sender.templates",
                )
        sources = {n: _shipped(f"page_templates/{n}.mustache") for n in (*PAGES, *PARTIALS)}
        strings: dict[str, dict[str, Any]] = {
            lang: json.loads(_shipped(f"locales/{lang}.json")) for lang in SHIPPED_LANGUAGES
        }
        if custom is not None:
            for n in sources:
                f = custom / f"{n}.mustache"
                if f.is_file():
                    try:
                        sources[n] = f.read_text("utf-8")
                    except (OSError, UnicodeDecodeError) as exc:
                        raise ConfigError(
                            f"cannot read page template: {exc}", file=str(f)
                        ) from None
            for f in sorted(custom.glob("*.json")):
                lang = f.stem.lower()
                if not _LANG.fullmatch(lang):
                    continue
                # A tenant's file overrides single strings; a new language
                # falls back to English for the strings it lacks.
                strings[lang] = {**strings.get(lang, strings["en"]), **_read_json(f, "templates")}
        self.locales = {lang: Locale(lang, doc) for lang, doc in strings.items()}
        if s.language not in self.locales:
            raise ConfigError(
                f"sender.language: {s.language!r} has no strings"
                f" (have: {', '.join(sorted(self.locales))})",
                file=file,
                field="sender.language",
            )
        partials = {n: sources[n] for n in PARTIALS}
        self.templates = {
            n: Template(sources[n], partials=partials, escape=True, name=f"page {n}") for n in PAGES
        }

    def locale(self, accept_language: str) -> Locale:
        return self.locales[negotiate(accept_language, self.locales, self.sender.language)]

    def list_name(self, list_id: str) -> str:
        info = self.lists.get(list_id)
        return info.name if info is not None else list_id

    def csp(self) -> bytes:
        img = f"img-src {self.sender.logo_url}; " if self.sender.logo_url else ""
        return (
            "default-src 'none'; style-src 'unsafe-inline'; "
            f"{img}form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ).encode("ascii")

    def texts(self, loc: Locale, values: Mapping[str, str]) -> dict[str, str]:
        """The locale's strings with the sender, contact and ``values`` filled in."""
        s = self.sender
        name = s.name or loc.strings.get("default_sender", "the sender")
        return loc.texts({"sender": name, "contact": s.contact, **values})

    def render(self, page: str, loc: Locale, t: Mapping[str, str], **data: Any) -> bytes:
        """One page as UTF-8; ``t`` is :meth:`texts`' result."""
        s = self.sender
        ctx: dict[str, Any] = {
            "lang": loc.lang,
            "t": t,
            "sender": {
                "name": s.name or loc.strings.get("default_sender", ""),
                "logo_url": s.logo_url,
                "contact": s.contact,
                "privacy_url": s.privacy_url,
            },
            "style": {"brand": s.color, "background": s.background, "text": TEXT, "muted": MUTED},
            **data,
        }
        return self.templates[page].render(ctx).encode("utf-8")


__all__ = [
    "AA",
    "ListInfo",
    "Locale",
    "Pages",
    "SenderSpec",
    "contrast",
    "luminance",
    "mask_address",
    "negotiate",
    "parse_colour",
]
