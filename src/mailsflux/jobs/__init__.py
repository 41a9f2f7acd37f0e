"""Jobs: a job file, its recipients, and running it (send, render, validate).

The stage that ties the others together. A job file
(:func:`load_job`, :mod:`mailsflux.jobs.jobfile`) names a template, a
recipient file and how to sign and deliver; :class:`Prepared` compiles the
templates, loads the DKIM key and opens the recipients
(:class:`RecipientFile`, streamed, duplicates dropped) and the suppression
list; each good row is composed (:class:`Composer`: render, MIME, tracking,
DKIM) and :func:`send` hands it to the delivery stage's scheduler.
:func:`render_to_dir` writes the messages as files instead, and
:func:`validate` finds every problem without composing or signing.
"""

from mailsflux.jobs.composer import Composer
from mailsflux.jobs.eventlog import EventLog
from mailsflux.jobs.jobfile import (
    DeliverySpec,
    DKIMSpec,
    DomainSpec,
    Job,
    JobSpec,
    MessageSpec,
    RecipientsSpec,
    TrackingSpec,
    load_job,
)
from mailsflux.jobs.prepared import Prepared, make_signer
from mailsflux.jobs.recipients import RecipientFile
from mailsflux.jobs.render import Rendered, render_to_dir
from mailsflux.jobs.rows import ProblemSink, check_all, compose_all
from mailsflux.jobs.run import send
from mailsflux.jobs.suppression import Suppression, read_list
from mailsflux.jobs.validate import validate

__all__ = [
    "Composer",
    "DKIMSpec",
    "DeliverySpec",
    "DomainSpec",
    "EventLog",
    "Job",
    "JobSpec",
    "MessageSpec",
    "Prepared",
    "ProblemSink",
    "RecipientFile",
    "RecipientsSpec",
    "Rendered",
    "Suppression",
    "TrackingSpec",
    "check_all",
    "compose_all",
    "load_job",
    "make_signer",
    "read_list",
    "render_to_dir",
    "send",
    "validate",
]
