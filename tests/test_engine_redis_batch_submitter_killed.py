"""An embedding process is killed (SIGKILL) while it puts a Batch into
Redis (its rows come from a slow async source): the messages it put in are
delivered once each by a real ``mailsflux worker``, and once the killed
submitter's lease runs out the worker ends the job with them, so the job
finishes instead of being watched for ever."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from mailsflux.spool.redis_spool import RedisSpool
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

#: Rows put in before the source stalls: one full stream entry (64) and one part-way.
PUT = 100
LEASE = 1.5


def test_batch_of_a_killed_submitter_is_sent_and_ended(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url, attempts=1)
        (tmp_path / "config.json").write_bytes(msgspec.json.encode(config))
        script = textwrap.dedent(
            f"""
            import asyncio, msgspec
            from mailsflux import Batch, Engine, Message
            from mailsflux.engine import Config
            from mailsflux.jobs import redis_batches

            redis_batches.FEED_LEASE = {LEASE}
            config = msgspec.json.decode(open({str(tmp_path / "config.json")!r}, "rb").read(),
                                         type=Config)

            async def rows():
                for i in range({PUT}):
                    yield {{"email": f"r{{i}}@example.com", "n": str(i)}}
                print("put", flush=True)
                await asyncio.sleep(3600)  # a source that stalls: killed while waiting

            async def main():
                async with Engine(config, redis={redis_url!r}, redis_prefix={prefix!r}) as e:
                    t = Message(sender="news@sender.example", to="", subject="Hi {{{{n}}}}",
                                text="Hello {{{{n}}}}")
                    h = await e.submit(Batch(template=t, recipients=rows(), name="stalled"))
                    await h.wait()

            asyncio.run(main())
            """
        )
        with Workers(1, redis_url, prefix, tmp_path) as workers:
            proc = subprocess.Popen(
                [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == b"put\n", proc.stderr.read() if proc.stderr else b""
            # The renewal task runs every LEASE / 3: it is alive until the kill.
            time.sleep(LEASE)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            assert proc.returncode == -signal.SIGKILL

            spool = RedisSpool(redis_url, prefix=prefix)
            try:
                deadline = time.monotonic() + 60
                info = None
                while time.monotonic() < deadline:
                    jobs = [j for j in spool.jobs() if j.name == "stalled"]
                    info = jobs[0] if jobs else None
                    if info is not None and info.state != "running":
                        break
                    time.sleep(0.1)
                assert info is not None and info.state == "finished", workers.log(0)
                counts = spool.counts(info.id)
                feeder = spool.client.exists(spool.key(info.id, "feeder"))
                lease = spool.client.exists(spool.key(info.id, "feed"))
            finally:
                spool.close()
            log = workers.log(0)

    # Only whole entries reach Redis: the first 64 rows, and nothing is lost
    # of what got in; each arrives once.
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert set(arrived.values()) == {1}, arrived
    assert counts.get("delivered", 0) == len(arrived) >= 64, (counts, log)
    assert info.total == len(arrived)
    assert "its submitter stopped renewing the job" in log
    assert not feeder and not lease
