"""Composition: template + recipient row -> finished, signed message bytes.

Everything that is the same for every recipient (templates, static headers,
the signing key) is prepared once in :class:`Composer`; :meth:`compose` does
only per-recipient work.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailsflux._addresses import split_mailbox
from mailsflux._errors import (
    ConfigError,
    HeaderError,
    MailsfluxError,
    RecipientError,
    TemplateError,
)
from mailsflux._headers import check_name, encode_unstructured, format_mailbox
from mailsflux._job import Job
from mailsflux._mime import alternative
from mailsflux._types import Message, Recipient
from mailsflux.dkim import Signer
from mailsflux.template import Template

#: Headers the job may not set itself: the composer owns them.
RESERVED = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Reply-To",
        "DKIM-Signature",
    )
)


def read_template_file(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TemplateError(f"{what} template not found", file=str(path)) from None
    except OSError as exc:
        raise TemplateError(
            f"cannot read {what} template: {exc.strerror}", file=str(path)
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TemplateError(f"{what} template is not UTF-8", file=str(path), line=line) from None


class Composer:
    """Builds each recipient's message from one job's templates."""

    def __init__(
        self, job: Job, signer: Signer | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        spec = job.spec.message
        self.job = job
        self.signer = signer
        self.clock = clock
        self.name_column = job.spec.recipients.name_column
        strict_body = spec.missing_variables == "error"
        where = f"{job.path}"
        self.subject = Template(
            spec.subject, escape=False, strict=True, name=f"{where}: message.subject"
        )
        self.sender = Template(
            spec.sender, escape=False, strict=True, name=f"{where}: message.from"
        )
        self.html = self.text = None
        if job.html_path is not None:
            src = read_template_file(job.html_path, "HTML")
            self.html = Template(src, escape=True, strict=strict_body, name=str(job.html_path))
        if job.text_path is not None:
            src = read_template_file(job.text_path, "text")
            self.text = Template(src, escape=False, strict=strict_body, name=str(job.text_path))
        self.id_domain = job.spec.dkim.domain
        static: list[str] = []
        if spec.reply_to:
            display, addr = split_mailbox(spec.reply_to)
            try:
                static.append(format_mailbox("Reply-To", display, addr)[0])
            except HeaderError as exc:
                raise ConfigError(
                    exc.message, file=str(job.path), field="message.reply_to"
                ) from None
        static.append("MIME-Version: 1.0")
        for name, value in spec.headers.items():
            try:
                check_name(name)
                if name.lower() in RESERVED:
                    raise HeaderError(f"header {name} is set by Mailsflux itself", field=name)
                static.append(encode_unstructured(name, value))
            except HeaderError as exc:
                raise ConfigError(
                    exc.message, file=str(job.path), field=f"message.headers.{name}"
                ) from None
        self._static = ("\r\n".join(static) + "\r\n").encode("ascii")
        self._date_at = -1
        self._date = b""

    @property
    def variables(self) -> frozenset[str]:
        names: set[str] = set(self.subject.variables | self.sender.variables)
        for t in (self.html, self.text):
            if t is not None:
                names |= t.variables
        return frozenset(names)

    def _date_header(self) -> bytes:
        now = int(self.clock())
        if now != self._date_at:
            self._date_at = now
            self._date = b"Date: " + email.utils.formatdate(now).encode("ascii") + b"\r\n"
        return self._date

    def compose(self, r: Recipient) -> Message:
        """Render, assemble and sign one recipient's message.

        Raises a :class:`MailsfluxError` (missing variable, header injection,
        bad address) that names the row; the caller reports and skips it.
        """
        data: dict[str, Any] = r.vars
        row, rcpt = r.row, r.email
        try:
            subject = self.subject.render(data, row=row, recipient=rcpt)
            sender = self.sender.render(data, row=row, recipient=rcpt)
            display, from_addr = split_mailbox(sender)
            from_line, from_parsed = format_mailbox("From", display, from_addr)
            to_line, to_parsed = format_mailbox("To", data.get(self.name_column, ""), r.email)
            lines = [
                from_line,
                to_line,
                encode_unstructured("Subject", subject),
            ]
            text = (
                self.text.render_bytes(data, row=row, recipient=rcpt)
                if self.text is not None
                else None
            )
            html = (
                self.html.render_bytes(data, row=row, recipient=rcpt)
                if self.html is not None
                else None
            )
        except MailsfluxError as exc:
            exc.row = r.row
            exc.recipient = r.email
            raise
        msgid = f"{os.urandom(10).hex()}.{r.row}@{self.id_domain}"
        ctype, body = alternative(text, html, f"=_mf_{os.urandom(12).hex()}")
        head = b"".join(
            (
                "\r\n".join(lines).encode("ascii"),
                b"\r\n",
                self._date_header(),
                b"Message-ID: <",
                msgid.encode("ascii"),
                b">\r\n",
                self._static,
                ctype,
                b"\r\n\r\n",
            )
        )
        raw = head + body
        if self.signer is not None:
            raw = self.signer.sign(raw, timestamp=self._date_at)
        return Message(
            mail_from=str(from_parsed),
            rcpt_to=str(to_parsed),
            data=raw,
            message_id=msgid,
            row=r.row,
            smtputf8=from_parsed.smtputf8 or to_parsed.smtputf8,
        )


__all__ = ["Composer", "RecipientError", "read_template_file"]
