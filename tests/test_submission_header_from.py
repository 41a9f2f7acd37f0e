"""The From header must be the tenant's too: a message whose envelope is
the tenant's but whose From names another tenant's domain is refused
(550 5.7.1), since it would go out under this tenant's DKIM signature."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from tests._mail import RecordingHandler, SMTPServer, parse
from tests._submission import FOREIGN_SENDER, SENDER, message, submission, until


def test_from_header_of_another_tenant_is_refused(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        async with submission(tmp_path, mx.url) as s:
            c = await s.logged_in()
            spoof = message("spoof", sender=FOREIGN_SENDER)
            spoof = spoof.replace(b"From: Acme <", b'From: "CEO <ceo@acme.example>" <')
            # A display name that looks like an address is none; every author counts.
            both = message("both").replace(b"From: Acme <", b"From: B <b@globex.example>, A <")
            # Nor may a comment or a bare display name smuggle one in.
            comment = message("c").replace(
                b"From: Acme <news@acme.example>", b"From: news@acme.example (ceo@globex.example)"
            )
            for data in (message("spoof", sender=FOREIGN_SENDER), spoof, both, comment):
                with pytest.raises(aiosmtplib.SMTPDataError) as exc:
                    await c.sendmail(SENDER, ["ann@x.test"], data)
                assert (exc.value.code, exc.value.message[:6]) == (550, "5.7.1 ")
            # A subdomain of its own is fine.
            await c.sendmail(SENDER, ["ann@x.test"], message("own", sender="a@mail.acme.example"))
            await c.quit()
            assert await until(lambda: len(handler.received) == 1)
            await asyncio.sleep(0.3)

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    assert [parse(r.data)["Subject"] for r in handler.received] == ["own"]
