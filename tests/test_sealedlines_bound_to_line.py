"""A sealed events value is bound to its line, not only to its field and
message id: two bounces without a message id cannot have their addresses
swapped. A value sealed the old way (field and message id only) still opens,
and a value whose shown key id is not the one inside it does not."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mailsflux import sealedlines
from mailsflux.errors import MailsfluxError
from mailsflux.spool import SpoolKeys


def _bounce(n: int, who: str) -> dict[str, object]:
    return {"id": f"evt_{n}", "type": "bounced", "time": 1795000000.0 + n, "tenant": "",
            "recipient": who, "details": {"reply": f"550 no such user {who}"}}  # fmt: skip


def test_values_cannot_move_between_lines(tmp_path: Path) -> None:
    keys = SpoolKeys.load(tmp_path / "keys")
    a = sealedlines.seal_doc(_bounce(1, "ann@x.test"), keys)
    b = sealedlines.seal_doc(_bounce(2, "bob@x.test"), keys)
    a["recipient"], b["recipient"] = b["recipient"], a["recipient"]
    with pytest.raises(MailsfluxError):
        sealedlines.open_doc(a, keys)


def test_old_values_open_and_key_ids_are_checked(tmp_path: Path) -> None:
    keys = SpoolKeys.load(tmp_path / "keys")
    sealed = keys.seal(b"ann@x.test", b"events-jsonl\x00recipient\x00")  # the old binding
    data = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    old = _bounce(1, f"mfs1:{keys.key_id(sealed)}:{data}")
    assert sealedlines.open_doc(dict(old), keys)["recipient"] == "ann@x.test"

    keys.rotate()
    doc = sealedlines.seal_doc(_bounce(3, "cy@x.test"), keys)
    _, kid, rest = str(doc["recipient"]).split(":", 2)
    assert kid == keys.current_id
    doc["recipient"] = f"mfs2:{keys.ids[1]}:{rest}"  # another key of the ring named
    with pytest.raises(sealedlines.SealedLinesError, match="names key"):
        sealedlines.open_doc(doc, keys)
