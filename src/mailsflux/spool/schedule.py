"""When a deferred message is tried again, and when it is given up.

RFC 5321 section 4.5.4.1: "the retry interval SHOULD be at least 30
minutes", and "the give-up time generally needs to be at least 4-5 days".
Postfix waits ``minimal_backoff_time`` (300 s) after the first failure,
doubles the wait up to ``maximal_backoff_time`` (4000 s) and returns the
message after ``maximal_queue_lifetime`` (5 days); this schedule is the
same, with jitter so that a site's deferred mail does not come due at one
instant. (The job's own quick retries, ``[delivery] attempts`` and
``retry_initial``, come first, inside the run: greylisting usually lets a
message through within minutes.)
"""

from __future__ import annotations

import random

import msgspec

DAY = 86_400.0


class RetrySchedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    #: Wait after the first failure seen by the spool (Postfix minimal_backoff_time).
    initial: float = 300.0
    #: The wait doubles up to this (Postfix maximal_backoff_time).
    max_delay: float = 4000.0
    #: Age (from the first attempt) after which a failing message bounces as expired.
    max_age: float = 5 * DAY
    #: +- this fraction of each wait, at random.
    jitter: float = 0.1

    def delay(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt (1 or more)."""
        base = min(self.initial * 2.0 ** max(attempts - 1, 0), self.max_delay)
        return max(base * (1.0 + self.jitter * (2.0 * random.random() - 1.0)), 0.0)

    def next_attempt(self, attempts: int, first_at: float, now: float) -> float | None:
        """When to try again, or None when the message has expired: the next
        try would come after ``max_age`` from the first."""
        at = now + self.delay(attempts)
        if at - first_at > self.max_age:
            return None
        return at
