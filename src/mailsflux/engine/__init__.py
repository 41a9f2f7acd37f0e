"""The public Engine: send one message or run batch jobs from your own code.

``async with Engine(Config(...)) as engine``: ``await engine.send(Message(...))``
for one message, ``await engine.submit(job)`` for a batch (a job file or a
:class:`Batch`); :class:`SyncEngine` is the same for scripts. This stage uses
every other one; none of them imports it (the CLI does).
"""

from mailsflux.engine.config import Config, Delivery, DKIMKey, DomainLimits, Tracking
from mailsflux.engine.engine import Engine, JobHandle, ResultCallback
from mailsflux.engine.message import Attachment, Batch, Message, Row
from mailsflux.engine.sync import SyncEngine

__all__ = [
    "Attachment",
    "Batch",
    "Config",
    "DKIMKey",
    "Delivery",
    "DomainLimits",
    "Engine",
    "JobHandle",
    "Message",
    "ResultCallback",
    "Row",
    "SyncEngine",
    "Tracking",
]
