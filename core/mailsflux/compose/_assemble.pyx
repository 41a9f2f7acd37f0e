"""Compiled assembly of a job's messages: rows in, signed messages out.

:class:`mailsflux.jobs.composer.Composer` checks a job once and keeps what
its messages share; an :class:`Assembler` holds those parts (the tracker's
rewriter, the signer and VERP come as callables: this stage imports none of
them) and makes each message from them: the Message-ID, the one-click unsubscribe token, the
templates rendered, links and the open pixel tracked, the MIME message built,
then the batch signed. In Python this was the largest share of the
interpreter's work on a message (some 250 bytecodes over three frames); here
the templates and the MIME builder are called through their C entry points,
with no keyword parsing, and only the tracker, the signer and VERP through
Python calls.

What a row may hold is not checked again here: the composer's rules, its
errors (each a :class:`MailsfluxError` naming the row and the recipient) and
their order are the same as they were in Python.
"""

from mailsflux.compose._mimebuild cimport MessageBuilder
from mailsflux.compose._template cimport Template

import email.utils as _email_utils

from mailsflux.errors import HeaderError, MailsfluxError
from mailsflux.types import RenderedMessage

cdef inline void _refused(list out, list errors, Py_ssize_t i, object exc) except *:
    # A refused row: among the messages, or apart with its index.
    if errors is None:
        out.append(exc)
    else:
        errors.append((i, exc))


cdef class Assembler:
    """A job's per-message work; made by the composer, which keeps the rules."""

    cdef Template subject
    cdef Template sender            # None: the From is static (in the builder)
    cdef Template text              # None: no text part
    cdef Template html              # None: no HTML part
    cdef MessageBuilder builder
    cdef str name_column
    cdef str id_domain
    cdef str job
    # Tracking (the tracker's compiled rewriter, called with positional arguments)
    cdef bint tracked
    cdef bint clicks
    cdef bint opens
    cdef bint text_links
    cdef object tracker             # its clock stamps the unsubscribe token
    cdef bint preferences           # the templates use {{preferences_url}}
    cdef object unsub_pair          # Rewriter.unsubscribe_pair
    cdef object unsub_mailto        # the checked mailto address, or None
    cdef object rewrite_html        # Rewriter.rewrite_html
    cdef object rewrite_text        # Rewriter.rewrite_text
    # Untracked: List-Unsubscribe from the job's template
    cdef object unsubscribe         # callable(data, row, recipient) -> str | None, or None
    cdef str unsub_static           # its value when it needs no row's data
    # The Date field, formatted once a second
    cdef object date_at
    cdef str date

    def __init__(self, *, Template subject not None, Template sender, Template text,
                 Template html, MessageBuilder builder not None, str name_column not None,
                 str id_domain not None, str job not None, object tracker=None,
                 bint clicks=False, bint opens=False, bint text_links=False,
                 bint preferences=False, str unsubscribe_mailto=None, object unsubscribe=None,
                 str unsubscribe_static=None):
        self.subject = subject
        self.sender = sender
        self.text = text
        self.html = html
        self.builder = builder
        self.name_column = name_column
        self.id_domain = id_domain
        self.job = job
        self.tracked = tracker is not None
        self.clicks = clicks
        self.opens = opens
        self.text_links = text_links
        self.tracker = tracker
        self.preferences = preferences
        if tracker is not None:
            rw = tracker.rewriter
            self.unsub_pair = rw.unsubscribe_pair
            self.rewrite_html = rw.rewrite_html
            self.rewrite_text = rw.rewrite_text
        self.unsub_mailto = unsubscribe_mailto
        self.unsubscribe = unsubscribe
        self.unsub_static = unsubscribe_static
        self.date_at = -1
        self.date = ""

    def tracked_unsubscribe(self, str message_id, str recipient):
        """The one-click URL and the List-Unsubscribe value, with one token
        (:meth:`Tracker.unsubscribe_pair`, its mailto address checked once)."""
        try:
            return self.unsub_pair(message_id, recipient, self.job,
                                   int(self.tracker.clock()), self.unsub_mailto)
        except ValueError as exc:  # the token's payload is bounded (job name, address)
            raise HeaderError(f"List-Unsubscribe: {exc}", field="List-Unsubscribe") from None

    cpdef str message_id(self, str token, object row):
        """A message's Message-ID (without its angle brackets): unique by its
        token, and naming the row it was made for."""
        return f"{token}.{row}@{self.id_domain}"

    cdef str _date_value(self, object clock):
        now = int(clock())
        if now != self.date_at:
            self.date_at = now
            self.date = _email_utils.formatdate(now)
        return self.date

    cdef tuple _assemble(self, object r, str token, object clock):
        """Everything of a message but its signature and VERP: (data, MAIL
        FROM, RCPT TO, Message-ID, row, SMTPUTF8, the second of its Date)."""
        data = r.vars
        row = r.row
        cdef str rcpt = r.email
        cdef str msgid, subject, sender = None, unsubscribe = None
        cdef bytes text = None, html = None
        if rcpt is None:
            raise TypeError("a recipient's address must not be None")
        msgid = self.message_id(token, row)
        try:
            if self.tracked:
                # The visible unsubscribe link and List-Unsubscribe carry the
                # same one-click token; templates use it as {{unsubscribe_url}}.
                url, unsubscribe = self.tracked_unsubscribe(msgid, rcpt)
                data = {**data, "unsubscribe_url": url}
                if self.preferences:
                    data["preferences_url"] = self.tracker.preferences_url(rcpt, self.job)
            subject = self.subject._render(data, row, rcpt)
            if self.sender is not None:
                sender = self.sender._render(data, row, rcpt)
            if self.text is not None:
                text = self.text._render_bytes(data, row, rcpt)
            if self.html is not None:
                html = self.html._render_bytes(data, row, rcpt)
            if self.tracked:
                sent = int(clock())
                if html is not None and (self.clicks or self.opens):
                    html = self.rewrite_html(
                        html, msgid, rcpt, self.job, sent, None, self.clicks, self.opens
                    )
                if text is not None and self.clicks and self.text_links:
                    text = self.rewrite_text(text, msgid, rcpt, self.job, sent, None)
            elif self.unsubscribe is not None:
                unsubscribe = self.unsubscribe(data, row, rcpt)
            else:
                unsubscribe = self.unsub_static
            to_name = data.get(self.name_column, "")
            raw, mail_from, rcpt_to, smtputf8 = self.builder._build(
                rcpt, subject, self._date_value(clock), msgid, text, html, to_name, sender,
                unsubscribe, token
            )
        except MailsfluxError as exc:
            exc.row = r.row
            exc.recipient = r.email
            raise
        # The second of its Date field: the signature's t= (a later message
        # of a batch may have moved date_at on by its own Date).
        return (raw, mail_from, rcpt_to, msgid, r.row, smtputf8, self.date_at)

    def compose_many(self, rows, clock, sign_many, verp, list errors=None):
        """Each ``(row, token)`` of ``rows`` composed: its RenderedMessage, or the
        MailsfluxError that refused it, in order. All are assembled before the
        first is signed (see Composer.compose_many). ``clock`` gives the time
        of the Date field and of the tracking tokens; ``sign_many`` (Signer's:
        ``[(data, timestamp)]`` to signed data or an error each) and ``verp``
        ``(message_id, recipient, job)`` may be None.

        With an ``errors`` list, only the messages are returned, and each
        refused row's ``(its index in rows, the error)`` is appended to
        ``errors``: a batch with none is then handed on as it is."""
        cdef list assembled = []
        cdef list out = []
        cdef list signed = None
        cdef str token
        cdef Py_ssize_t at = 0
        cdef Py_ssize_t i = -1
        for r, token in rows:
            try:
                assembled.append(self._assemble(r, token, clock))
            except MailsfluxError as exc:
                assembled.append(exc)
        if sign_many is not None:
            # (data, the second of its Date field: the signature's t=)
            signed = sign_many([(a[0], a[6]) for a in assembled if type(a) is tuple])
        for a in assembled:
            i += 1
            if type(a) is not tuple:
                _refused(out, errors, i, a)
                continue
            raw, mail_from, rcpt_to, msgid, row, smtputf8, _ = <tuple>a
            if signed is not None:
                raw = signed[at]
                at += 1
                if type(raw) is not bytes:  # the DKIMError that refused it
                    _refused(out, errors, i, raw)
                    continue
            if verp is not None:
                try:
                    mail_from = verp(msgid, rcpt_to, self.job)
                except MailsfluxError as exc:
                    _refused(out, errors, i, exc)
                    continue
            out.append(RenderedMessage(mail_from, rcpt_to, raw, msgid, row, smtputf8))
        return out

