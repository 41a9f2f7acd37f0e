"""The spool: what every job has settled, and the messages still to be tried.

A stage of its own between delivery and jobs: jobs record each result in
it (so an interrupted job resumes where it stopped) and park deferred
messages there, encrypted, until :mod:`mailsflux.jobs.queue` tries them
again on the :class:`RetrySchedule`. :class:`Spool` is the interface;
:class:`SQLiteSpool` the embedded default (a directory, no server);
:class:`RedisSpool` the shared one, for many workers on many hosts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsflux.spool.keys import SpoolKeys
from mailsflux.spool.schedule import RetrySchedule
from mailsflux.spool.sqlite import CLAIM, SQLiteSpool, pid_alive
from mailsflux.spool.store import FINAL, STATES, JobInfo, Record, Spool, Spooled, State

if TYPE_CHECKING:
    from mailsflux.spool.redis_spool import RedisSpool

#: Overrides where the spool lives (``[spool] dir`` in a job file wins).
SPOOL_ENV = "MAILSFLUX_SPOOL"


def default_spool_dir() -> Path:
    """``$MAILSFLUX_SPOOL``, else ``$XDG_STATE_HOME/mailsflux/spool`` (~/.local/state)."""
    env = os.environ.get(SPOOL_ENV)
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mailsflux" / "spool"


__all__ = [
    "CLAIM",
    "FINAL",
    "SPOOL_ENV",
    "STATES",
    "JobInfo",
    "Record",
    "RedisSpool",
    "RetrySchedule",
    "SQLiteSpool",
    "Spool",
    "SpoolKeys",
    "Spooled",
    "State",
    "default_spool_dir",
    "pid_alive",
]


def __getattr__(name: str) -> Any:
    # The Redis spool needs the redis client: loaded on first use.
    if name == "RedisSpool":
        from mailsflux.spool.redis_spool import RedisSpool

        return RedisSpool
    raise AttributeError(name)
