"""DKIM key files on disk: created on first use, DNS record written beside."""

from __future__ import annotations

from pathlib import Path

from mailsflux._files import create_whole
from mailsflux.dkim.keygen import dns_txt_record, generate_private_key, zone_file_line


def txt_path_for(key_path: Path) -> Path:
    """Where the zone-file line for ``key_path`` lives (as ``keys.write_key_pair`` names it)."""
    return key_path.with_suffix(".txt")


def ensure_key(
    key_path: Path, *, domain: str, selector: str, algorithm: str = "rsa-sha256", bits: int = 2048
) -> bool:
    """Create ``key_path`` (mode 0600) and its DNS record if missing; True if created."""
    if key_path.exists():
        return False
    key_path.parent.mkdir(parents=True, exist_ok=True)
    pem = generate_private_key(algorithm, bits)
    # Of two jobs starting at once one wins and the other uses its key.
    if not create_whole(key_path, pem):
        return False
    line = zone_file_line(
        dns_txt_record(pem, algorithm=algorithm), domain=domain, selector=selector
    )
    txt_path_for(key_path).write_text(line + "\n", encoding="ascii")
    return True
