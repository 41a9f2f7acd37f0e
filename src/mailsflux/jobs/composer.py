"""Composition: template + recipient row -> finished, signed message bytes.

Everything that is the same for every recipient (templates, static headers,
attachments and inline images, the signing key) is prepared once in
:class:`Composer`; :meth:`compose` does only per-recipient work: render the
templates, then hand the pieces to the compiled
:class:`~mailsflux.compose._mimebuild.MessageBuilder`, which writes the whole message
into one C buffer.
"""

from __future__ import annotations

import mimetypes
import os
import re
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from mailsflux.compose import (
    RESERVED,
    Assembler,
    Attachment,
    MessageBuilder,
    Template,
    check_name,
    encode_unstructured,
    format_mailbox,
    split_mailbox,
)
from mailsflux.dkim import Signer
from mailsflux.dkim.keys import ascii_domain
from mailsflux.errors import (
    ConfigError,
    DKIMError,
    HeaderError,
    MailsfluxError,
    RecipientError,
    TemplateError,
)
from mailsflux.jobs.jobfile import Job, _locate
from mailsflux.tracking.tracker import Tracker, mailto_address
from mailsflux.types import Recipient, RenderedMessage

if TYPE_CHECKING:
    from mailsflux.feedback.verp import Verp

#: A merge value that needs no percent-encoding inside a URI.
_URI_PLAIN = re.compile(r"[A-Za-z0-9._~@\-]*")
#: Random bytes before the row number in a Message-ID (20 hex digits).
_ID_BYTES = 10


def message_tokens(n: int) -> list[str]:
    """``n`` tokens for :meth:`Composer.compose` (a message's id and MIME
    boundary), from one read of the OS: a job's rows take them a batch at a
    time, where a read each was one system call a message. Cut apart by
    ``bytes.hex``'s separator, not a Python loop: 10.6 bytecodes a message."""
    return os.urandom(_ID_BYTES * n).hex(" ", _ID_BYTES).split()


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


class Sources(NamedTuple):
    """A message's bodies and files given as values rather than job-file paths
    (what :mod:`mailsflux.engine` sends): template text and ready attachments."""

    html: str | None = None
    text: str | None = None
    attachments: Sequence[Attachment] = ()
    inline: Sequence[Attachment] = ()


class ColumnProblem(NamedTuple):
    """A template variable that is not a column of the recipient file."""

    where: str  # template file[:line], or the job file and its field
    variable: str
    strict: bool  # True: every row would be skipped; False: it renders empty

    def message(self, csv: Path) -> str:
        return f"variable {self.variable!r} is not a column of {csv}"


def _template_line(source: str, name: str) -> int | None:
    pat = re.compile(r"\{\{\s*[#^&{]?\s*" + re.escape(name) + r"[\s.}|]")
    for n, line in enumerate(source.splitlines(), 1):
        if pat.search(line):
            return n
    return None


def _uri_value(value: object) -> object:
    """A merge value percent-encoded for a URI (RFC 3986 unreserved and @ kept)."""
    if isinstance(value, str) and not _URI_PLAIN.fullmatch(value):
        return quote(value, safe="@")
    return value


class Composer:
    """Builds each recipient's message from one job's templates."""

    def __init__(
        self,
        job: Job,
        signer: Signer | None,
        *,
        clock: Callable[[], float] = time.time,
        tracker: Tracker | None = None,
        sources: Sources | None = None,
    ) -> None:
        spec = job.spec.message
        self.job = job
        self.tracker = tracker
        self.tracking = job.spec.tracking if tracker is not None else None
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
        self.list_unsubscribe: Template | None = None
        if spec.list_unsubscribe is not None:
            self.list_unsubscribe = Template(
                spec.list_unsubscribe,
                escape=False,
                strict=True,
                name=f"{where}: message.list_unsubscribe",
            )

        def job_error(exc: MailsfluxError, *path: str) -> ConfigError:
            try:
                line = _locate(job.path.read_text("utf-8"), list(path))
            except (OSError, UnicodeDecodeError):
                line = None
            return ConfigError(exc.message, file=str(job.path), line=line, field=".".join(path))

        def config_error(exc: MailsfluxError, *path: str) -> ConfigError:
            return job_error(exc, "message", *path)

        # Message-IDs are ASCII: a Unicode signing domain goes in as its A-label.
        try:
            self.id_domain = ascii_domain(job.spec.dkim.domain, "domain")
        except DKIMError as exc:
            raise job_error(exc, "dkim", "domain") from None

        self.html = self.text = None
        if sources is not None:
            if sources.html is not None:
                self.html = self._body(
                    Path("message.html"), "HTML", True, strict_body, config_error, sources.html
                )
            if sources.text is not None:
                self.text = self._body(
                    Path("message.text"), "text", False, strict_body, config_error, sources.text
                )
        if job.html_path is not None:
            self.html = self._body(job.html_path, "HTML", True, strict_body, config_error)
        if job.text_path is not None:
            self.text = self._body(job.text_path, "text", False, strict_body, config_error)

        # A From without merge tags is encoded once, here; a bad one is a job error.
        static_sender = spec.sender if "{{" not in spec.sender else None
        if static_sender is not None:
            try:
                format_mailbox("From", *split_mailbox(static_sender))
            except HeaderError as exc:
                raise config_error(exc, "from") from None
        if spec.reply_to:
            try:
                format_mailbox("Reply-To", *split_mailbox(spec.reply_to))
            except HeaderError as exc:
                raise config_error(exc, "reply_to") from None
        for name, value in spec.headers.items():
            try:
                check_name(name)
                low = name.lower()
                if low in ("list-unsubscribe", "list-unsubscribe-post"):
                    raise HeaderError(
                        f"header {name} is set by Mailsflux itself: use message.list_unsubscribe",
                        field=name,
                    )
                if low in RESERVED:
                    raise HeaderError(f"header {name} is set by Mailsflux itself", field=name)
                encode_unstructured(name, value)
            except HeaderError as exc:
                raise config_error(exc, "headers", name) from None
        attachments = list(sources.attachments) if sources is not None else []
        for rel in spec.attachments:
            path, data = self._read(rel, "attachment", config_error)
            try:
                attachments.append(Attachment(data, path.name, content_type(path)))
            except HeaderError as exc:
                raise config_error(exc, "attachments") from None
        inline = list(sources.inline) if sources is not None else []
        for cid, rel in spec.inline_images.items():
            path, data = self._read(rel, "inline image", config_error, "inline_images", cid)
            try:
                inline.append(Attachment(data, path.name, content_type(path), cid=cid))
            except HeaderError as exc:
                raise config_error(exc, "inline_images", cid) from None
        if inline and self.html is None:
            raise config_error(
                ConfigError("inline images need an HTML body (message.html)"), "inline_images"
            )
        try:
            self._builder = MessageBuilder(
                sender=static_sender,
                reply_to=spec.reply_to or None,
                headers=spec.headers,
                attachments=attachments,
                inline=inline,
            )
            # The same headers over an empty body, for `validate`: every header
            # check of a real message at a fraction of the cost.
            self._checker = MessageBuilder(
                sender=static_sender, reply_to=spec.reply_to or None, headers=spec.headers
            )
        except MailsfluxError as exc:  # all checked above; kept for safety
            raise config_error(exc) from None
        self._static_sender = static_sender is not None
        self._unsub_static: str | None = None
        self._unsub_names: tuple[str, ...] = ()
        if self.list_unsubscribe is not None:
            self._unsub_names = tuple(sorted(self.list_unsubscribe.variables))
            if not self._unsub_names:
                self._unsub_static = self.list_unsubscribe.render({})
        # `check` proves a tracked List-Unsubscribe once per (recipient, Message-ID)
        # length: the token's length, all that can make it fail, depends on them only.
        self._unsub_checked: dict[tuple[int, int], MailsfluxError | None] = {}
        # A sealed token per message costs an AES-GCM seal: made only when used.
        self._wants_preferences = "preferences_url" in self.variables
        self._unsub_checker = MessageBuilder(sender="check@check.example")
        self.verp: Verp | None = None
        if tracker is not None and self.tracking is not None and self.tracking.bounce_domain:
            # Here, not at import: the feedback package brings the SMTP listener.
            from mailsflux.feedback.verp import Verp

            try:
                self.verp = Verp(tracker.keys, tracker.key_id, self.tracking.bounce_domain)
            except ConfigError as exc:
                raise job_error(exc, "tracking", "bounce_domain") from None
        tracking = self.tracking  # None unless there is a tracker too
        unsub_mailto: str | None = None
        if tracking is not None and tracking.unsubscribe_mailto is not None:
            # Checked once, here, so every message goes straight to the compiled part.
            try:
                unsub_mailto = mailto_address(tracking.unsubscribe_mailto)
            except HeaderError as exc:  # or every row of `send` would be skipped for it
                exc.message = f"field tracking.unsubscribe_mailto: {exc.message}"
                raise job_error(exc, "tracking", "unsubscribe_mailto") from None
        self._asm = Assembler(
            subject=self.subject,
            sender=None if self._static_sender else self.sender,
            text=self.text,
            html=self.html,
            builder=self._builder,
            name_column=self.name_column,
            id_domain=self.id_domain,
            job=job.name,
            tracker=tracker if tracking is not None else None,
            clicks=tracking is not None and tracking.clicks,
            opens=tracking is not None and tracking.opens,
            text_links=tracking is not None and tracking.text_links,
            preferences=self._wants_preferences,
            unsubscribe_mailto=unsub_mailto,
            unsubscribe=(
                self._unsubscribe
                if self.list_unsubscribe is not None and self._unsub_static is None
                else None
            ),
            unsubscribe_static=self._unsub_static,
        )

    def _body(
        self,
        path: Path,
        what: str,
        escape: bool,
        strict: bool,
        config_error: Callable[..., ConfigError],
        src: str | None = None,
    ) -> Template:
        """A body template with the partials it reaches, each read once.

        A partial that is not found is a job error naming the tag's file and
        line: Mustache would render it as nothing, which no one wants in mail.
        """
        if src is None:
            src = read_template_file(path, what)
        sources: dict[str, str] = {}
        files: dict[str, Path] = {}
        tried: set[str] = set()
        while True:
            try:
                tpl = Template(src, partials=sources, escape=escape, strict=strict, name=str(path))
            except TemplateError as exc:
                if exc.file in files:  # a partial's own syntax error: name its file
                    exc.file = str(files[exc.file])
                raise
            wanted = {m[0] for m in tpl.missing_partials} - tried
            if not wanted:
                break
            for name in sorted(wanted):
                tried.add(name)
                found = self._partial_path(name, path.suffix, config_error)
                if found is not None:
                    files[name] = found
                    sources[name] = read_template_file(found, f"partial {name!r}")
        for name, file, line, column in tpl.missing_partials:
            raise TemplateError(
                f"partial {name!r} not found (list it in message.partials, or put it in"
                " message.partials_dir)",
                file=str(files.get(file, file)),
                line=line,
                column=column,
                field=name,
            )
        return tpl

    def _partial_path(
        self, name: str, suffix: str, config_error: Callable[..., ConfigError]
    ) -> Path | None:
        spec = self.job.spec.message
        if name in spec.partials:
            p = self.job.resolve(spec.partials[name])
            if not p.is_file():
                raise config_error(ConfigError(f"partial {str(p)!r}: not found"), "partials", name)
            return p
        if spec.partials_dir is None or "/" in name or "\\" in name or name.startswith("."):
            return None
        d = self.job.resolve(spec.partials_dir)
        if not d.is_dir():
            err = ConfigError(f"partials directory {str(d)!r}: not found")
            raise config_error(err, "partials_dir")
        for candidate in (d / (name + suffix), d / f"{name}.mustache", d / name):
            if candidate.is_file():
                return candidate
        return None

    def _read(
        self,
        rel: str,
        what: str,
        config_error: Callable[..., ConfigError],
        *path: str,
    ) -> tuple[Path, bytes]:
        p = self.job.resolve(rel)
        try:
            return p, p.read_bytes()
        except OSError as exc:
            why = "not found" if isinstance(exc, FileNotFoundError) else exc.strerror
            err = ConfigError(f"{what} {str(p)!r}: {why}")
            raise config_error(err, *(path or ("attachments",))) from None

    @property
    def provided(self) -> frozenset[str]:
        """Variables Mailsflux supplies itself (not recipient columns)."""
        if self.tracker is None:
            return frozenset()
        return frozenset({"unsubscribe_url", "preferences_url"})

    @property
    def variables(self) -> frozenset[str]:
        names: set[str] = set(self.subject.variables | self.sender.variables)
        for t in (self.html, self.text, self.list_unsubscribe):
            if t is not None:
                names |= t.variables
        return frozenset(names)

    def missing_columns(self, columns: Collection[str]) -> list[ColumnProblem]:
        """Every template variable that neither ``columns`` nor Mailsflux supplies.

        A strict template (subject, from, List-Unsubscribe; the bodies unless
        ``missing_variables = "empty"``) would skip every row for it.
        """
        have = set(columns) | self.provided
        where = str(self.job.path)
        found: list[ColumnProblem] = []
        for field, t in (
            ("message.subject", self.subject),
            ("message.from", self.sender),
            ("message.list_unsubscribe", self.list_unsubscribe),
        ):
            if t is not None:
                for v in sorted(t.variables - have):
                    found.append(ColumnProblem(f"{where}: {field}", v, True))
        for body in (self.html, self.text):
            if body is None:
                continue
            for v in sorted(body.variables - have):
                line = _template_line(body.source, v)
                loc = f"{body.name}:{line}" if line else body.name
                found.append(ColumnProblem(loc, v, body.strict))
        return found

    @property
    def builder(self) -> MessageBuilder:
        return self._builder

    def _unsubscribe(self, data: dict[str, Any], row: int, rcpt: str) -> str | None:
        tpl = self.list_unsubscribe
        if tpl is None or self._unsub_static is not None:
            return self._unsub_static
        quoted = {k: _uri_value(data[k]) for k in self._unsub_names if k in data}
        return tpl.render(quoted, row=row, recipient=rcpt)

    def _check_tracked_unsubscribe(self, msgid: str, rcpt: str) -> None:
        key = (len(rcpt.encode("utf-8", "surrogatepass")), len(msgid))
        if key not in self._unsub_checked:
            err: MailsfluxError | None = None
            try:
                _, value = self._asm.tracked_unsubscribe(msgid, rcpt)
                self._unsub_checker.build(
                    to="check@check.example",
                    subject="",
                    date="Thu, 01 Jan 2026 00:00:00 +0000",
                    message_id=msgid,
                    text=b"",
                    list_unsubscribe=value,
                )
            except MailsfluxError as exc:
                err = exc
            self._unsub_checked[key] = err
        err = self._unsub_checked[key]
        if err is not None:
            raise type(err)(err.message, field=err.field)

    def check(self, r: Recipient) -> None:
        """What :meth:`compose` would refuse for this row, found without
        building the message: render every template and check every header,
        but no MIME bodies, no tracking tokens and no DKIM signature.
        """
        data: dict[str, Any] = r.vars
        row, rcpt = r.row, r.email
        unsubscribe: str | None = None
        # The real length: a long signing domain can make it too long.
        msgid = self._asm.message_id("0" * (2 * _ID_BYTES), row)
        if self.tracker is not None:
            # Any URL will do: only its presence matters to the templates.
            base = self.tracker.base_url
            data = {
                **data,
                "unsubscribe_url": base + "/u/check",
                "preferences_url": base + "/p/check",
            }
        try:
            if self.tracker is not None:
                self._check_tracked_unsubscribe(msgid, rcpt)
            subject = self.subject.render(data, row=row, recipient=rcpt)
            sender = (
                None if self._static_sender else self.sender.render(data, row=row, recipient=rcpt)
            )
            if self.text is not None:
                self.text.render_bytes(data, row=row, recipient=rcpt)
            if self.html is not None:
                self.html.render_bytes(data, row=row, recipient=rcpt)
            if self.tracker is None:
                unsubscribe = self._unsubscribe(data, row, rcpt)
            self._checker.build(
                to=rcpt,
                to_name=data.get(self.name_column, ""),
                subject=subject,
                date="Thu, 01 Jan 2026 00:00:00 +0000",  # any valid date: not checked per row
                message_id=msgid,
                text=b"",
                sender=sender,
                list_unsubscribe=unsubscribe,
            )
        except MailsfluxError as exc:
            exc.row = r.row
            exc.recipient = r.email
            raise

    def compose(self, r: Recipient, token: str | None = None) -> RenderedMessage:
        """Render, assemble and sign one recipient's message.

        ``token``, one of :func:`message_tokens` (never given twice), makes its
        Message-ID and MIME boundary unique; without it one is drawn.
        Raises a :class:`MailsfluxError` (missing variable, header injection,
        bad address) that names the row; the caller reports and skips it.
        """
        if token is None:
            token = message_tokens(1)[0]
        got = self.compose_many([(r, token)])[0]
        if isinstance(got, MailsfluxError):
            raise got
        return got

    def compose_many(
        self, rows: Sequence[tuple[Recipient, str]]
    ) -> list[RenderedMessage | MailsfluxError]:
        """:meth:`compose` of each ``(row, token)``, in order: its message, or
        the error that compose() would raise for it.

        Every message is assembled before the first is signed. An RSA-2048
        sign runs some 250 us through big-number tables that push the
        interpreter and the compiled stages out of the CPU's caches; one
        sign after another and one assembly after another keep each warm.
        The whole job (bench e2e, 30,000 messages, medians of 6 rounds) took
        12 us a message less for RSA-2048 than taking turns, 6 for Ed25519.
        """
        return self._compose(rows, None)

    def compose_batch(
        self, rows: Sequence[tuple[Recipient, str]], errors: list[tuple[int, MailsfluxError]]
    ) -> list[RenderedMessage]:
        """:meth:`compose_many`, the messages apart from the refusals: each
        refused row's ``(index in rows, error)`` is appended to ``errors``,
        so a batch with none is handed on as it is."""
        return self._compose(rows, errors)  # type: ignore[return-value]

    def _compose(
        self,
        rows: Sequence[tuple[Recipient, str]],
        errors: list[tuple[int, MailsfluxError]] | None,
    ) -> list[RenderedMessage | MailsfluxError]:
        # Assembled, then signed, in compiled code (mailsflux.compose._assemble).
        return self._asm.compose_many(
            rows,
            self.clock,
            None if self.signer is None else self.signer.sign_many,
            None if self.verp is None else self.verp.make,
            errors,
        )


def content_type(path: Path) -> str:
    """The attachment's type from its name; message/* and multipart/* (which
    cannot be base64 parts) and unknown types go as application/octet-stream."""
    ctype = mimetypes.guess_type(path.name, strict=False)[0]
    if ctype is None or ctype.startswith(("message/", "multipart/")):
        return "application/octet-stream"
    return ctype


__all__ = [
    "RESERVED",
    "Composer",
    "RecipientError",
    "Sources",
    "content_type",
    "read_template_file",
]
