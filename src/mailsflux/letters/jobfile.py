"""The letter job file (TOML): which template, to whom, on what paper, via
which carrier, and where the letters' states are kept.

Paths are relative to the file. Errors name the file and, where the fault
is in the file, its line (the email job file's :func:`locate`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from mailsflux.errors import JobFileError
from mailsflux.jobs.jobfile import locate as _locate
from mailsflux.jobs.jobfile import read_spec


class LetterSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: The Mustache template: HTML with print CSS (one letter per recipient).
    html: str
    #: "A4" (DIN 5008 form B window) or "letter" (US #10 window, tri-folded).
    paper: Literal["A4", "letter"] = "A4"
    #: The return address line printed small above the recipient's, inside
    #: the window (DIN 5008's Rücksendeangabe); may hold merge tags.
    sender: str = ""
    #: The sender's country (ISO 3166 alpha-2): a letter abroad ends its
    #: address with the country's name (UPU S42), one at home does not.
    origin_country: str = ""
    missing_variables: Literal["error", "empty"] = "error"
    partials: dict[str, str] = msgspec.field(default_factory=dict)


class AddressColumns(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which CSV column holds which part of the postal address."""

    name: str = "name"
    company_name: str = "company"
    street_address: str = "street"
    city: str = "city"
    city_area: str = "city_area"
    country_area: str = "state"
    postal_code: str = "postal_code"
    sorting_code: str = "sorting_code"
    country_code: str = "country"


class LetterRecipientsSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    file: str
    #: The column naming each recipient for status and events (a customer
    #: number, never the address); default: the row number.
    id_column: str = ""
    columns: AddressColumns = msgspec.field(default_factory=AddressColumns)


class CarrierSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: "file": a print house's drop folder; "http": a carrier's JSON API.
    kind: Literal["file", "http"] = "file"
    #: file: the drop folder (PDFs plus a manifest CSV).
    dir: str = ""
    #: http: the API's base URL, and the environment variable holding its key.
    url: str = ""
    api_key_env: str = ""
    #: What the carrier is asked for: "standard" or "first_class".
    mail_class: Literal["standard", "first_class"] = "standard"
    color: bool = False
    #: http: seconds for one request; attempts on a 429 or 5xx.
    timeout: float = 30.0
    attempts: int = 5
    #: serve (``[letters]``): seconds between asking the carrier about open letters.
    poll_seconds: float = 300.0


class StoreSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: Where the letters' states live (default: ``letters`` beside the job file).
    dir: str = ""
    #: The AES-256 key file sealing postal addresses (default ``DIR/keys``).
    key_file: str = ""
    #: Days after confirmed delivery a letter's postal address is deleted.
    retention_days: float = 30.0
    #: Days after a letter was recorded its address is deleted whatever its
    #: state (pending, stuck in transit, never reported on).
    max_age_days: float = 180.0


class LetterJobSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str = ""
    letter: LetterSpec
    recipients: LetterRecipientsSpec
    carrier: CarrierSpec = msgspec.field(default_factory=CarrierSpec)
    store: StoreSpec = msgspec.field(default_factory=StoreSpec)


class LetterJob:
    """A loaded letter job: the spec plus resolved paths."""

    def __init__(self, spec: LetterJobSpec, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.name = spec.name or path.stem

    def resolve(self, rel: str) -> Path:
        p = Path(rel).expanduser()
        return p if p.is_absolute() else self.path.parent / p

    @property
    def store_dir(self) -> Path:
        return self.resolve(self.spec.store.dir or "letters")

    @property
    def key_path(self) -> Path:
        s = self.spec.store
        return self.resolve(s.key_file) if s.key_file else self.store_dir / "keys"

    def api_key(self) -> str:
        env = self.spec.carrier.api_key_env
        return os.environ.get(env, "") if env else ""


def load_letter_job(path: str | Path) -> LetterJob:
    """Read and check a letter job file; :class:`JobFileError` names file and line."""
    p = Path(path)
    spec, text = read_spec(p, LetterJobSpec)
    c = spec.carrier
    need = {"file": ("dir", c.dir), "http": ("url", c.url)}[c.kind]
    if not need[1]:
        raise JobFileError(
            f"field carrier.{need[0]}: needed for kind = {c.kind!r}",
            file=str(p),
            line=_locate(text, ["carrier"]),
            field=f"carrier.{need[0]}",
        )
    return LetterJob(spec, p)
