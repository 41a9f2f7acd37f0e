"""``serve``'s front-door options and ``keys api|smtp``: tenants' credentials."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from mailsflux.errors import ConfigError


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help="server TOML: [http], [delivery], [[dkim]], [[tenants]], [regions]",
    )
    p.add_argument(
        "--http", metavar="HOST:PORT", help="serve the HTTP API here (overrides [http] listen)"
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keys and tenants' data ($MAILSFLUX_HOME, else the state dir)",
    )


def server_config(args: argparse.Namespace) -> Any:
    """The ServerConfig the options give, or None (the queue alone, as before)."""
    from mailsflux.server import HTTPSpec, ServerConfig, parse_listen

    if not (args.config or args.http or getattr(args, "data_dir", None)):
        return None
    config = ServerConfig.from_options(args.config, args.data_dir)
    if args.http:
        parse_listen(args.http, "--http")
        config.http = msgspec.structs.replace(config.http or HTTPSpec(), listen=args.http)
    config.check()  # a bad table fails here, before anything starts
    return config


def _store(args: argparse.Namespace) -> tuple[Any, Any]:
    from mailsflux.server import ServerConfig, key_store

    config = ServerConfig.from_options(args.config, args.data_dir)
    return config, key_store(config)


def cmd_key_create(args: argparse.Namespace) -> int:
    config, keys = _store(args)
    with keys:
        if args.tenant not in config.tenant_list():
            raise ConfigError(f"no tenant {args.tenant!r} in the server config", field="--tenant")
        info, secret = keys.create(args.tenant, args.role, kind=args.kind, label=args.label)
    print(
        f"created {info.kind} key {info.id} for tenant {info.tenant}"
        f" ({', '.join(info.roles)}); the secret is shown only now:",
        file=sys.stderr,
    )
    if args.kind == "api":
        print(secret)
    else:
        print(f"username: {info.id}\npassword: {secret}")
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    _, keys = _store(args)
    with keys:
        found = [k for k in keys.list(args.tenant) if k.kind == args.kind]
    if args.json:
        print(msgspec.json.encode(found).decode())
        return 0
    for k in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.created))
        state = "revoked" if k.revoked else "active"
        print(f"{k.id}  {k.tenant}  {','.join(k.roles)}  {state}  {when}  {k.label}")
    if not found:
        print(f"no {args.kind} keys", file=sys.stderr)
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    _, keys = _store(args)
    with keys:
        if not keys.revoke(args.id):
            print(f"mailsflux: no active key {args.id!r}", file=sys.stderr)
            return 1
    print(f"revoked {args.id}", file=sys.stderr)
    return 0


def add_key_parsers(ksub: Any) -> None:
    """``keys api ...`` and ``keys smtp ...`` under ``keys``."""
    for kind, what in (("api", "HTTP API keys"), ("smtp", "SMTP submission credentials")):
        p = ksub.add_parser(kind, help=f"{what} of tenants: create, list, revoke")
        act = p.add_subparsers(dest=f"{kind}_action", required=True, metavar="ACTION")
        c = act.add_parser("create", help="create one; its secret is printed once")
        c.add_argument("--tenant", default="default", help="the tenant it belongs to (default)")
        c.add_argument(
            "--role",
            action="append",
            choices=("send", "read", "admin"),
            required=True,
            help="what it may do: send, read, admin (repeat for several)",
        )
        c.add_argument("--label", default="", help="a note to tell keys apart")
        c.set_defaults(func=cmd_key_create, kind=kind)
        ls = act.add_parser("list", help="list them (never their secrets)")
        ls.add_argument("--tenant", help="only this tenant's")
        ls.add_argument("--json", action="store_true", help="as JSON")
        ls.set_defaults(func=cmd_key_list, kind=kind)
        r = act.add_parser("revoke", help="revoke one at once, in every running server")
        r.add_argument("id", help="the key id (api_... or smtp_...)")
        r.set_defaults(func=cmd_key_revoke, kind=kind)
        for q in (c, ls, r):
            q.add_argument(
                "--config", metavar="FILE", help="the server TOML (its data_dir, tenants)"
            )
            q.add_argument("--data-dir", metavar="DIR", help="the server's data directory")


def cmd_retention_run(args: argparse.Namespace) -> int:
    """Sweep once: the job-file spool and every tenant's data. Each store is
    swept on its own: one that fails is named on stderr (exit 1) and the
    others are still swept."""
    from mailsflux.gateway import (
        Sweeps,
        TenantLog,
        sweep_events_files,
        sweep_quarantine,
        sweep_spool,
        sweep_tenant,
        tenant_due,
    )
    from mailsflux.gateway.gateway import lock_dir, tenant_dir
    from mailsflux.server import ServerConfig, key_store
    from mailsflux.spool import default_spool_dir

    config = ServerConfig.from_options(args.config, args.data_dir)
    config.tenant_list()  # a bad tenant table: one line, before anything is read
    spec = config.retention
    now = time.time() + args.days_ahead * 86400
    sweeps = Sweeps()
    spool = Path(args.spool) if args.spool else default_spool_dir()
    sweeps.run(f"spool {spool}", lambda: sweep_spool(spool, spec, now))
    for path in config.events_files() + [Path(f) for f in args.events]:
        sweeps.run(f"events file {path}", partial(sweep_events_files, [path], spec, now))
    if (quarantine := config.quarantine_dir()) is not None:
        sweeps.run(f"quarantine {quarantine}", lambda: sweep_quarantine(quarantine, spec, now))
    regions = {k: str(config.resolve(v)) for k, v in config.regions.items()}

    with key_store(config) as store:
        cancelled = store.cancelled_tenants()

        def delete(name: str) -> dict[str, int]:
            t = next((t for t in config.tenant_list() if t.name == name), None)
            if t is not None:
                where = tenant_dir(t, config.data_path, regions)
                if where.exists():
                    lock = lock_dir(where, f"tenant {name}")  # not while a server holds it
                    lock.close()
                    shutil.rmtree(where)
            store.forget_tenant(name)
            return {"tenants_deleted": 1}

        for name in [n for n in cancelled if tenant_due(cancelled, n, spec, now)]:
            sweeps.run(f"tenant {name}", partial(delete, name))
    for tenant in config.tenant_list():
        where = tenant_dir(tenant, config.data_path, regions)
        if not (where / "log.db").exists():
            continue

        def one(where: Path = where) -> dict[str, int]:
            log = TenantLog.of(where)
            try:
                return sweep_tenant(where, log, spec, now)
            finally:
                log.close()

        sweeps.run(f"tenant {tenant.name}", one)
    if args.json:
        print(msgspec.json.encode(sweeps.done).decode())
    else:
        for k, v in sorted(sweeps.done.items()):
            print(f"{k.replace('_', ' ')}: {v}")
    for failure in sweeps.failed:
        print(f"mailsflux retention: not swept: {failure}", file=sys.stderr)
    return 1 if sweeps.failed else 0


def add_retention_parser(sub: Any) -> None:
    p = sub.add_parser("retention", help="delete or anonymise personal data past its time")
    act = p.add_subparsers(dest="retention_action", required=True, metavar="ACTION")
    r = act.add_parser("run", help="sweep once: the job spool and every tenant's data")
    r.add_argument("--config", metavar="FILE", help="the server TOML ([retention], tenants)")
    r.add_argument("--data-dir", metavar="DIR", help="the server's data directory")
    r.add_argument(
        "--spool", metavar="DIR", help="the job-file spool ($MAILSFLUX_SPOOL, else the default)"
    )
    r.add_argument(
        "--days-ahead",
        type=float,
        default=0.0,
        metavar="N",
        help="sweep as if N days had passed (to see what a later sweep removes)",
    )
    r.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="FILE",
        help="also sweep this events file (send --events, bounces ingest --events); repeatable",
    )
    r.add_argument("--json", action="store_true", help="the counts as JSON")
    r.set_defaults(func=cmd_retention_run)


def cmd_tenant(args: argparse.Namespace) -> int:
    """``tenants cancel|restore|list``: a cancelled tenant's keys stop at once and
    its data is deleted ``[retention] account_days`` later."""
    config, keys = _store(args)
    with keys:
        if args.tenants_action == "list":
            cancelled = keys.cancelled_tenants()
            for t in config.tenant_list():
                at = cancelled.get(t.name)
                when = time.strftime("%Y-%m-%d", time.gmtime(at)) if at else ""
                print(f"{t.name}  {'cancelled ' + when if at else 'active'}  {t.region}")
            return 0
        if args.tenant not in config.tenant_list():
            raise ConfigError(f"no tenant {args.tenant!r} in the server config", field="TENANT")
        if args.tenants_action == "cancel":
            n = keys.cancel_tenant(args.tenant)
            days = config.retention.account_days
            print(f"cancelled {args.tenant}: {n} keys revoked; its data is deleted {days:g} days"
                  " from now (`tenants restore` takes it back until then)")  # fmt: skip
            return 0
        if not keys.restore_tenant(args.tenant):
            print(f"mailsflux: {args.tenant} is not cancelled", file=sys.stderr)
            return 1
        print(f"restored {args.tenant}: its data stays; make new keys (the old ones stay revoked)")
        return 0


def add_tenant_parser(sub: Any) -> None:
    p = sub.add_parser("tenants", help="cancel or restore a tenant; list them")
    act = p.add_subparsers(dest="tenants_action", required=True, metavar="ACTION")
    for name, text in (
        ("cancel", "revoke its keys now; delete its data after [retention] account_days"),
        ("restore", "take a cancellation back (before its data is deleted)"),
        ("list", "each tenant, active or cancelled (and when)"),
    ):
        q = act.add_parser(name, help=text)
        if name != "list":
            q.add_argument("tenant", metavar="TENANT", help="the tenant's name")
        q.add_argument("--config", metavar="FILE", help="the server TOML (its data_dir, tenants)")
        q.add_argument("--data-dir", metavar="DIR", help="the server's data directory")
        q.set_defaults(func=cmd_tenant)
