"""``mailsflux keys rotate-store``: a new key for every store, values sealed again.

Each tenant's key file gets a new key first (the old ones stay, so values
not yet sealed again still open); its spool records, its log's recipients
and details, and its API jobs' waiting rows are then sealed under it. The
server's events key (the bounce listener's events file) and, with
``--events``, a ``send --events`` file go the same way, and so does the spool
in Redis (``--redis``, or the server config's ``[redis]``): its records,
deferred bodies, delivery settings and the batches no worker holds yet, while
the workers run (:mod:`mailsflux.jobs.redis_privacy`). A running server goes on
sending: it seals with the key it had until it meets the new key's id,
then reads the key file again (or at its next start).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mailsflux.errors import ConfigError


def _rotate_tenant(name: str, directory: Path) -> str:
    from mailsflux.gateway.gateway import ROWS_FILE
    from mailsflux.gateway.log import TenantLog
    from mailsflux.gateway.sealed import reseal_rows
    from mailsflux.spool import SQLiteSpool

    if not (directory / "spool" / "spool.db").exists():
        return f"tenant {name}: nothing stored yet ({directory}), no key to rotate"
    with SQLiteSpool(directory / "spool") as spool:
        kid = spool.keys.rotate()
        records = spool.reseal()
        events = rows = 0
        if (directory / "log.db").exists():
            log = TenantLog(directory / "log.db", spool.keys, name)
            try:
                events = log.reseal()
                # API jobs' rows waiting to be handed on; one still being
                # written is left (its writer appends to the file it opened).
                for path in sorted(directory.glob(f"jobs/*/{ROWS_FILE}")):
                    job = log.job(path.parent.name)
                    if job is not None and job.state != "writing":
                        rows += reseal_rows(path, path.parent.name, spool.keys)
            finally:
                log.close()
    return (
        f"tenant {name}: new key {kid}; {records} spool records, {events} events and"
        f" {rows} API job rows sealed again"
    )


def _rotate_events(key_file: Path, files: list[Path], quarantine: Path | None) -> str:
    """A new key in ``key_file``; the events files and quarantined reports
    sealed with it sealed again."""
    from mailsflux.feedback.ingest import reseal_quarantine
    from mailsflux.sealedlines import reseal
    from mailsflux.spool import SpoolKeys

    keys = SpoolKeys.load(key_file)
    kid = keys.rotate()
    lines = sum(reseal(f, keys) for f in files if f.exists())
    reports = reseal_quarantine(quarantine, keys) if quarantine and quarantine.is_dir() else 0
    return (
        f"events key {kid} ({key_file}); {lines} events lines and {reports} quarantined"
        " reports sealed again"
    )


def _rotate_redis(url: str, prefix: str, key_file: str | None, rotated: set[Path]) -> str:
    """The spool in Redis at ``url`` sealed again under a new key in its key
    file (one already given a new key by this command is not rotated twice)."""
    from mailsflux.jobs.redis_privacy import reseal
    from mailsflux.spool.redis_spool import RedisSpool

    with RedisSpool(url, prefix=prefix, key_file=key_file, create_key=False) as spool:
        spool.check_keys()
        path = spool.keys.path.resolve() if spool.keys.path else None
        if path is None or path not in rotated:
            spool.keys.rotate()
            if path is not None:
                rotated.add(path)
        kid = spool.keys.current_id
        done = reseal(spool)
    held = done["batches_held"]
    return (
        f"redis prefix {prefix}: key {kid}; {done['records']} records, {done['bodies']} deferred"
        f" bodies, {done['specs']} job settings and {done['batches']} batches sealed again"
        + (f"; {held} batches held by workers stay under the old key until sent" if held else "")
    )


def cmd_rotate_store(args: argparse.Namespace) -> int:
    from mailsflux.cli_queue import cmd_queue_rekey
    from mailsflux.cli_worker import redis_stores
    from mailsflux.gateway.gateway import tenant_dir
    from mailsflux.server import ServerConfig
    from mailsflux.spool import default_spool_dir

    server = bool(args.config or args.data_dir or args.tenant)
    rotated: set[Path] = set()
    if args.spool or not (server or args.redis):
        cmd_queue_rekey(argparse.Namespace(spool=args.spool, key_file=None, redis=None))
        rotated.add((Path(args.spool or default_spool_dir()) / "keys").resolve())
        if args.events:
            # Sealed with the job spool's keys (send --events): now under its new key.
            from mailsflux.sealedlines import reseal
            from mailsflux.spool import SpoolKeys

            keys = SpoolKeys.load(Path(args.spool or default_spool_dir()) / "keys", create=False)
            lines = sum(reseal(Path(f), keys) for f in args.events)
            print(f"{lines} events lines sealed again")
    config = ServerConfig.from_options(args.config, args.data_dir) if server else None
    for url, prefix, key_file in redis_stores(args, config):
        print(_rotate_redis(url, prefix, key_file, rotated))
    if config is None:
        return 0
    tenants = list(config.tenant_list())
    if args.tenant:
        tenants = [t for t in tenants if t.name == args.tenant]
        if not tenants:
            raise ConfigError(f"no tenant {args.tenant!r} in the server config", field="--tenant")
    for t in tenants:
        print(_rotate_tenant(t.name, tenant_dir(t, config.data_path, config.regions)))
    from mailsflux.sealedlines import EVENTS_KEY_FILE

    events_keys = config.data_path / EVENTS_KEY_FILE
    if events_keys.exists():
        b = config.bounces
        files = [config.resolve(b.events)] if b is not None and b.events else []
        print(_rotate_events(events_keys, files, config.quarantine_dir()))
    print("a running server learns the new keys when it first meets one, or at its next start")
    return 0


def add_rotate_parser(ksub: Any) -> None:
    p = ksub.add_parser(
        "rotate-store",
        help="a new key for the job spool and each tenant's spool and log; everything resealed",
    )
    p.add_argument("--config", metavar="FILE", help="the server TOML (its data_dir, tenants)")
    p.add_argument("--data-dir", metavar="DIR", help="the server's data directory")
    p.add_argument("--tenant", help="only this tenant (default: every tenant of the server)")
    p.add_argument(
        "--spool",
        metavar="DIR",
        help="the job-file spool too (alone, without server options: the default one)",
    )
    p.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="FILE",
        help="an events file of send --events (sealed with the job-file spool's keys) to seal"
        " again; repeatable",
    )
    from mailsflux.cli_worker import redis_options

    redis_options(p)  # the spool in Redis too (a server's [redis] is visited with --config)
    p.set_defaults(func=cmd_rotate_store)
