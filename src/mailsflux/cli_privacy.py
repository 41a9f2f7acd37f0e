"""``mailsflux privacy export|erase|correct|object ADDRESS``: a person's rights.

Every store that can hold an address is searched: the tracking store
(``--tracking``), the job-file spool (``--spool``), each tenant's spool
and log of a server (``--config``), and the spool in Redis (``--redis``, or
the server's ``[redis]``): every job's records and the rows its batches still
hold, each opened, since addresses are sealed and not indexed. Each request
is written to an audit log (``privacy-audit.jsonl`` in the server's data
directory) with who, when and what, naming the address only by a keyed hash.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec


def _key(address: str) -> str:
    from mailsflux.gateway.privacy import address_key

    return address_key(address, "ADDRESS")


def _stores(args: argparse.Namespace) -> tuple[Any, list[tuple[str, Path]], Path]:
    """The server config, each tenant's data folder, and the audit log's folder."""
    from mailsflux.gateway.gateway import tenant_dir
    from mailsflux.server import ServerConfig

    config = ServerConfig.from_options(args.config, args.data_dir)
    config.tenant_list()  # a bad tenant table: one line, before anything is read
    regions = {k: str(config.resolve(v)) for k, v in config.regions.items()}
    tenants = [
        (t.name, tenant_dir(t, config.data_path, regions))
        for t in config.tenant_list()
        if args.tenant in (None, t.name)
    ]
    return config, tenants, config.data_path


def _redis_stores(args: argparse.Namespace, config: Any) -> list[tuple[str, str, str | None]]:
    """``--redis`` and, with ``--config`` or ``--data-dir``, the server's ``[redis]``."""
    from mailsflux.cli_worker import redis_stores

    return redis_stores(args, config if (args.config or args.data_dir) else None)


def _events_files(args: argparse.Namespace) -> list[tuple[Path, Any, Path]]:
    """The events files to search, each with the keys that sealed it and
    their key ring's file: the server's own (the bounce listener's, under its
    data directory's events key) and each ``--events FILE`` (``send
    --events``: the job-file spool's)."""
    from mailsflux.sealedlines import EVENTS_KEY_FILE
    from mailsflux.spool import default_spool_dir

    config, _, _ = _stores(args)
    out: list[tuple[Path, Any, Path]] = []
    b = config.bounces
    server_keys = config.data_path / EVENTS_KEY_FILE
    if b is not None and b.events and config.resolve(b.events).exists():
        path = config.resolve(b.events)
        out.append((path, _ring(path, server_keys), server_keys))
    if args.events:
        spool_keys = Path(args.spool or default_spool_dir()) / "keys"
        for f in [Path(f) for f in args.events if Path(f).exists()]:
            out.append((f, _ring(f, spool_keys), spool_keys))
    return out


def _ring(events: Path, ring: Path) -> Any:
    """The key ring in ``ring`` for ``events`` (None when there is none)."""
    from mailsflux.errors import MailsfluxError
    from mailsflux.sealedlines import SealedLinesError
    from mailsflux.spool import SpoolKeys

    if not ring.exists():
        return None
    try:
        return SpoolKeys.load(ring, create=False)
    except MailsfluxError as exc:
        raise SealedLinesError(f"events file {events}: key ring {ring}: {exc}") from None


def cmd_privacy(args: argparse.Namespace) -> int:
    """Erase and correct read every store first (as an export would, every
    sealed value opened): one that cannot be read stops the request before
    anything is changed. The audit line is written whatever happens, with
    what was done and what failed."""
    from mailsflux.gateway.privacy import audit, matcher

    key = _key(args.address)
    action = args.privacy_action
    new = _key(args.to) if action == "correct" else None
    match = matcher(key)
    config, tenants, audit_dir = _stores(args)
    args.redis_stores = _redis_stores(args, config)
    counts: dict[str, int] = {}
    failed: str | None = None
    try:
        if action in ("erase", "correct"):
            _act(args, "export", match, None, tenants, {})  # the check: changes nothing
        doc = _act(args, action, match, new, tenants, counts)
    except BaseException as exc:
        failed = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        audit(audit_dir, action, key, counts, failed=failed)
    if action == "export":
        data = msgspec.json.encode({"address": key} | doc)
        if args.out:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data + b"\n")
        else:
            sys.stdout.write(data.decode() + "\n")
    else:
        done = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing held"
        print(f"{action}: {done}")
    return 0


def _act(
    args: argparse.Namespace,
    action: str,
    match: Callable[[str], bool],
    new: str | None,
    tenants: list[tuple[str, Path]],
    counts: dict[str, int],
) -> dict[str, Any]:
    """``action`` in every store; ``counts`` filled as each store is done."""
    from mailsflux.errors import MailsfluxError
    from mailsflux.gateway import TenantLog
    from mailsflux.sealedlines import SealedLinesError, person
    from mailsflux.spool import SQLiteSpool, default_spool_dir

    erase = action == "erase"
    doc: dict[str, Any] = {"exported_at": time.time()}
    if action != "object":
        spool_dir = Path(args.spool) if args.spool else default_spool_dir()
        if (spool_dir / "spool.db").exists():
            with SQLiteSpool(spool_dir) as spool:
                doc["spool"] = spool.person(match, erase=erase, correct=new)
            counts["spool"] = len(doc["spool"])
        doc["tenants"] = {}
        for name, where in tenants:
            if not (where / "log.db").exists():
                continue
            with SQLiteSpool(where / "spool") as spool:
                records = spool.person(match, erase=erase, correct=new)
                keys = spool.keys
            counts[f"{name}.spool"] = len(records)
            log = TenantLog(where / "log.db", keys)
            try:
                events = log.person(match, erase=erase, correct=new)
            finally:
                log.close()
            doc["tenants"][name] = {"spool": records, "events": msgspec.to_builtins(events)}
            counts[f"{name}.events"] = len(events)
        for path, keys, ring in _events_files(args):
            try:
                found = person(path, keys, match, erase=erase, correct=new)
            except MailsfluxError as exc:
                if keys is not None:
                    raise  # names the file, its line and the key file
                raise SealedLinesError(f"{exc} (no key file at {ring})") from None
            doc.setdefault("events_files", {})[str(path)] = found
            counts[f"events_file.{path.name}"] = len(found)
        for url, prefix, key_file in args.redis_stores:
            from mailsflux.jobs.redis_privacy import person as redis_person
            from mailsflux.spool.redis_spool import RedisSpool

            with RedisSpool(url, prefix=prefix, key_file=key_file, create_key=False) as rs:
                rows = redis_person(rs, match, erase=erase, correct=new)
            doc.setdefault("redis", {})[prefix] = rows
            counts[f"redis.{prefix}"] = len(rows)
    if args.tracking:
        from mailsflux.tracking.config import load_config

        with load_config(args.tracking).open_store() as store:
            key = _key(args.address)
            if action == "export":
                doc["tracking"] = store.export(key)
            elif action == "erase":
                counts["tracking.events"] = store.erase(key)
            elif action == "correct":
                assert new is not None
                moved = store.suppression(key)
                if moved is not None:  # the opt-out follows the person
                    store.suppress(new, reason=moved.reason)
                counts["tracking.suppression"] = int(moved is not None)
            elif action == "object":
                store.set_tracking_objection(key, not args.withdraw)
                counts["tracking.objection"] = int(not args.withdraw)
    return doc


def add_privacy_parser(sub: Any) -> None:
    from mailsflux.cli_worker import redis_options

    p = sub.add_parser("privacy", help="a person's data: export, erase, correct, object")
    act = p.add_subparsers(dest="privacy_action", required=True, metavar="ACTION")
    helps = {
        "export": "everything held about ADDRESS, as one JSON document",
        "erase": "remove ADDRESS everywhere (a suppression keeps only a keyed hash)",
        "correct": "replace ADDRESS with --to NEW where it is stored",
        "object": "stop tracking opens and clicks for ADDRESS",
    }
    for name, text in helps.items():
        q = act.add_parser(name, help=text)
        q.add_argument("address", metavar="ADDRESS", help="the person's email address")
        q.add_argument("--tracking", metavar="FILE", help="the tracking config whose store to use")
        q.add_argument("--config", metavar="FILE", help="the server TOML (its tenants' data)")
        q.add_argument("--data-dir", metavar="DIR", help="the server's data directory")
        q.add_argument("--tenant", metavar="T", help="only this tenant's data")
        q.add_argument("--spool", metavar="DIR", help="the job-file spool (default as for status)")
        q.add_argument(
            "--events",
            action="append",
            default=[],
            metavar="FILE",
            help="an events file (send --events: sealed with the --spool's keys) to search;"
            " repeatable",
        )
        if name != "object":  # the objection lives in the tracking store only
            redis_options(q)
        if name == "export":
            q.add_argument("--out", metavar="FILE", help="write the JSON here (0600), not stdout")
            q.set_defaults(raw_stdout=True)  # the document is the person's data, whole
        if name == "correct":
            q.add_argument("--to", required=True, metavar="NEW", help="the corrected address")
        if name == "object":
            q.add_argument("--withdraw", action="store_true", help="take the objection back")
        q.set_defaults(func=cmd_privacy)
