"""A credential sends only from its tenant's domains (553 5.7.1), and only
with the send role (550 5.7.1); the refusals are per transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import FOREIGN_SENDER, SENDER, message, submission, until


def test_other_tenants_domain_and_missing_role_are_refused(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        async with submission(tmp_path, mx.url) as s:
            c = await s.logged_in()
            for sender in (
                FOREIGN_SENDER,
                "news@acme.example.globex.example",
                "news@notacme.example",
            ):
                with pytest.raises(aiosmtplib.SMTPSenderRefused) as exc:
                    await c.sendmail(sender, ["ann@x.test"], message(sender=sender))
                assert (exc.value.code, exc.value.message[:6]) == (553, "5.7.1 ")
            # The same session may still send as its own domain (a subdomain too).
            await c.sendmail("alerts@mail.acme.example", ["ann@x.test"], message(sender=SENDER))
            await c.quit()

            # globex's credential cannot send as acme; a read-only acme key cannot send at all.
            for tenant, roles, code in (("globex", ["send"], 553), ("acme", ["read"], 550)):
                user, password = s.credential(tenant, roles)
                c = await s.logged_in(user, password)
                with pytest.raises(aiosmtplib.SMTPSenderRefused) as exc:
                    await c.sendmail(SENDER, ["ann@x.test"], message())
                assert (exc.value.code, exc.value.message[:6]) == (code, "5.7.1 ")
                await c.quit()
            assert await until(lambda: len(handler.received) == 1)
            await asyncio.sleep(0.3)  # nothing else is on its way

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    assert [r.mail_from for r in handler.received] == ["alerts@mail.acme.example"]
