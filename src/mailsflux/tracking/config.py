"""The tracking config file, shared by the sender and the tracking server.

```toml
base_url = "https://t.example.com"   # where the tracking server answers
current_key = "k2"                   # signs new tokens
store = "tracking.sqlite"            # relative to this file
store_secret = "..."                 # base64url, >= 32 bytes: encrypts personal data
window = 10                          # seconds after sending: events flagged as machine
events_days = 365                    # retention of events
personal_days = 90                   # retention of personal data in events
store_ip = false                     # keep client IPs (encrypted)
signed_tokens_days = 90              # old signed-only open/click links accepted this long

[keys]                               # base64url, >= 16 bytes (32 recommended)
k1 = "..."                           # old keys keep verifying links already sent
k2 = "..."

[sender]                             # what the recipient pages show (all optional)
name = "Northwind Cloud"
logo_url = "https://northwind.example/logo.png"
color = "#1a56db"                    # links and buttons: >= 4.5:1 on white
background = "#f4f5f7"
contact = "support@northwind.example"
privacy_url = "https://northwind.example/privacy"
templates = "pages"                  # replacement templates and strings
language = "en"                      # when Accept-Language names none we have
undo_hours = 48                      # a person may take back an unsubscribe
link_days = 0                        # preference links expire (0: never; /u/ never does)

[lists.welcome]                      # a job name as recipients see it
name = "Welcome series"
description = "Tips for your first weeks"
```

The file holds secrets: :func:`write_new_config` creates it with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import tomllib
from pathlib import Path

import msgspec

from mailsflux.errors import ConfigError
from mailsflux.tracking.events import EventStore, Retention
from mailsflux.tracking.pages import ListInfo, Pages, SenderSpec
from mailsflux.tracking.server import TrackingApp
from mailsflux.tracking.tokens import TokenVerifier
from mailsflux.tracking.tracker import Tracker


class _Spec(msgspec.Struct, forbid_unknown_fields=True):
    base_url: str
    current_key: str
    keys: dict[str, str]
    store_secret: str
    store: str = "tracking.sqlite"
    window: float = 10.0
    events_days: float = 365.0
    personal_days: float = 90.0
    store_ip: bool = False
    # Tokens of mail sent before they were sealed: see TokenVerifier.
    signed_tokens_days: float = 90.0
    sender: SenderSpec = msgspec.field(default_factory=SenderSpec)
    lists: dict[str, ListInfo] = msgspec.field(default_factory=dict)


def _b64(value: str, field: str, file: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{field}: not base64url", file=file, field=field) from None


class TrackingConfig:
    """A loaded tracking config: makes the Tracker, the store and the app."""

    def __init__(self, spec: _Spec, path: Path) -> None:
        f = str(path)
        self.path = path
        self.base_url = spec.base_url
        self.current_key = spec.current_key
        self.keys = {k: _b64(v, f"keys.{k}", f) for k, v in spec.keys.items()}
        self.store_secret = _b64(spec.store_secret, "store_secret", f)
        self.store_path = (path.parent / spec.store).resolve()
        self.window = spec.window
        self.retention = Retention(events_days=spec.events_days, personal_days=spec.personal_days)
        self.store_ip = spec.store_ip
        self.signed_tokens_days = spec.signed_tokens_days
        self.pages = Pages(spec.sender, spec.lists, base=path.parent, file=f)
        try:
            self.tracker()  # validate keys and base URL now
        except ConfigError as exc:
            exc.file = f
            raise

    def tracker(self) -> Tracker:
        return Tracker(self.base_url, self.keys, self.current_key)

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(self.keys, signed_days=self.signed_tokens_days)

    def open_store(self) -> EventStore:
        try:
            return EventStore(self.store_path, self.store_secret, retention=self.retention)
        except ValueError as exc:
            raise ConfigError(str(exc), file=str(self.path), field="store_secret") from None

    def app(self) -> TrackingApp:
        return TrackingApp(
            self.verifier(),
            self.open_store(),
            window=self.window,
            store_ip=self.store_ip,
            pages=self.pages,
        )


def load_config(path: str | os.PathLike[str]) -> TrackingConfig:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError("tracking config not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read tracking config: {exc}", file=str(p)) from None
    try:
        spec = msgspec.convert(doc, _Spec)
    except msgspec.ValidationError as exc:
        raise ConfigError(str(exc), file=str(p)) from None
    return TrackingConfig(spec, p)


def write_new_config(path: str | os.PathLike[str], base_url: str) -> None:
    """Create a config with a fresh signing key and store secret (mode 0600)."""
    p = Path(path)
    Tracker(base_url, {"k1": b"0" * 32}, "k1")  # validates the base URL

    def key() -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()

    text = (
        f'base_url = "{base_url.rstrip("/")}"\n'
        'current_key = "k1"\n'
        'store = "tracking.sqlite"\n'
        f'store_secret = "{key()}"\n'
        "window = 10\nevents_days = 365\npersonal_days = 90\nstore_ip = false\n"
        "signed_tokens_days = 0  # no mail with signed-only tokens was sent with these keys\n\n"
        f'[keys]\nk1 = "{key()}"\n'
        "\n# What the recipient pages (unsubscribe, preferences) show; all optional.\n"
        "# [sender]\n"
        '# name = "Your Company"\n'
        '# contact = "support@example.com"\n'
        '# logo_url = "https://example.com/logo.png"\n'
        '# color = "#1a56db"\n'
        '# templates = "pages"\n'
        "#\n"
        "# [lists.JOB_NAME]\n"
        '# name = "Newsletter"\n'
    )
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


__all__ = ["TrackingConfig", "load_config", "write_new_config"]
