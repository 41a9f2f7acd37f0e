"""``mailsflux render``: finished messages written as ``.eml`` files, nothing sent."""

from __future__ import annotations

from pathlib import Path

import msgspec

from mailsflux.errors import OutputError
from mailsflux.jobs.outdir import eml_name, make_out_dir, write_new
from mailsflux.jobs.prepared import Prepared
from mailsflux.jobs.rows import ProblemSink
from mailsflux.types import Problem


class Rendered(msgspec.Struct):
    """What :func:`render_to_dir` did: the files written, and how many could not be."""

    written: list[Path]
    unwritten: int = 0


def render_to_dir(
    prepared: Prepared,
    out: Path,
    *,
    limit: int | None,
    on_problem: ProblemSink,
    force: bool = False,
) -> Rendered:
    """Write the first ``limit`` finished messages as ``.eml`` files.

    An existing file is an :class:`OutputError` unless ``force``; a file that
    cannot be written is reported with its row, and the rest go on.
    """
    make_out_dir(out)
    done = Rendered([])
    for msg in prepared.messages(on_problem):
        if limit is not None and len(done.written) >= limit:
            break
        p = out / eml_name(msg.row, msg.rcpt_to)
        try:
            write_new(p, msg.data, replace=force)
        except FileExistsError:
            raise OutputError("exists (--force replaces it)", file=str(p)) from None
        except OSError as exc:
            done.unwritten += 1
            where = f"{prepared.recipients.path}:{msg.row}"
            on_problem(Problem(where, f"{msg.rcpt_to}: cannot write {p}: {exc.strerror}"))
            continue
        done.written.append(p)
    return done
