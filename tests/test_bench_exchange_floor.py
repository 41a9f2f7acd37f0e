"""The exchange floor's compiled client against real servers: it delivers
exactly what it is asked to, byte for byte, pipelined or in lock-step, and
stops at the first reply it did not ask for, saying what the server said."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from mailsflux.benchmark.floors import exchange_floor
from mailsflux.benchmark.result import BenchError
from tests._scripted_smtp import Conn, ScriptedSMTP

# Lines that start with a dot (stuffed on the wire), and one that is only a dot.
DATA = (
    b"From: a@northwind.example\r\nTo: r@example0.org\r\nSubject: hi\r\n\r\n"
    b".leading dot\r\n.\r\n..two\r\nlast line\r\n"
)


def _floor(port: int, count: int, connections: int, timeout: float = 10.0) -> dict[str, float]:
    return exchange_floor(
        port, "a@northwind.example", "r@example0.org", DATA,
        count=count, connections=connections, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("size", ["10000000", None])
def test_every_message_arrives_whole(pipelining: bool, size: str | None) -> None:
    with ScriptedSMTP(pipelining=pipelining, size=size) as server:
        x = _floor(server.port, 25, 4)
    assert x["exchange_pipelining"] == (1.0 if pipelining else 0.0)
    assert server.bodies == [DATA] * 25
    assert server.sessions == 4
    # SIZE= the message's length when the server offers SIZE, as the engine says it.
    mail = "MAIL FROM:<a@northwind.example>" + ("" if size is None else f" SIZE={len(DATA)}")
    assert x["exchange_sized"] == (0.0 if size is None else 1.0)
    assert server.lines.count(mail) == 25
    assert server.lines.count("RCPT TO:<r@example0.org>") == 25
    assert x["exchange_msg_s"] > 0
    assert 0 <= x["exchange_system_us"] <= x["exchange_us"]


def test_fewer_messages_than_connections() -> None:
    with ScriptedSMTP() as server:
        _floor(server.port, 2, 8)
    assert server.sessions == 2
    assert server.bodies == [DATA] * 2


def test_a_refused_recipient_stops_it_with_the_reply() -> None:
    def script(cmd: str, conn: Conn) -> str | None:
        return "550 5.1.1 no such user" if cmd.startswith("RCPT") else None

    with ScriptedSMTP(script=script) as server, pytest.raises(BenchError) as err:
        _floor(server.port, 5, 1)
    assert "550 5.1.1 no such user" in err.value.message
    assert "0 of 5 taken" in err.value.message
    assert server.bodies == []


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_message_is_not_counted(pipelining: bool) -> None:
    def script(cmd: str, conn: Conn) -> str | None:
        return "554 5.7.1 spam" if cmd == "." and conn.messages == 3 else None

    with (
        ScriptedSMTP(pipelining=pipelining, script=script) as server,
        pytest.raises(BenchError) as e,
    ):
        _floor(server.port, 6, 1)
    assert "554 5.7.1 spam" in e.value.message
    assert "2 of 6 taken" in e.value.message


def test_a_server_that_hangs_up() -> None:
    with ScriptedSMTP(drop_after_messages=3) as server, pytest.raises(BenchError) as err:
        _floor(server.port, 10, 1)
    assert "closed the connection" in err.value.message
    # The third message's data was read, never answered: not taken.
    assert "2 of 10 taken" in err.value.message
    assert len(server.bodies) == 3


def test_a_refused_ehlo() -> None:
    with ScriptedSMTP(helo_reply="502 5.5.1 no") as server, pytest.raises(BenchError) as err:
        _floor(server.port, 1, 1)
    assert "EHLO: 502 5.5.1 no" in err.value.message


def test_a_server_that_never_answers_the_data() -> None:
    with ScriptedSMTP(end_of_data_delay=30) as server, pytest.raises(BenchError) as err:
        _floor(server.port, 3, 1, timeout=0.5)
    assert "no reply within the timeout" in err.value.message
    assert "0 of 3 taken" in err.value.message


def test_a_server_that_stops_reading() -> None:
    """It says 354, then reads nothing: the write waits at most the timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"220 x\r\n")
            conn.recv(100)  # EHLO
            conn.sendall(b"250 PIPELINING\r\n")
            conn.recv(100)  # MAIL, RCPT, DATA
            conn.sendall(b"250 a\r\n250 b\r\n354 c\r\n")
            done.wait(30)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    big = DATA + b"x" * 998 + b"\r\n"
    big = big * (64 * 1024 * 1024 // len(big))  # more than any socket buffer holds
    try:
        with pytest.raises(BenchError) as err:
            exchange_floor(
                listener.getsockname()[1], "a@b.example", "c@d.example", big,
                count=1, connections=1, timeout=1.0,
            )  # fmt: skip
    finally:
        done.set()
        t.join(10)
        listener.close()
    assert "write: the server took nothing within the timeout" in err.value.message


def test_ctrl_c_stops_it() -> None:
    """SIGINT during a long wait raises KeyboardInterrupt then, not at the timeout."""
    with ScriptedSMTP(end_of_data_delay=60) as server:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                _floor(server.port, 2, 1, timeout=60.0)
        finally:
            timer.cancel()
        waited = time.monotonic() - start
    assert waited < 30  # the timeout was 60 s


def test_a_greeting_that_is_no_welcome() -> None:
    with ScriptedSMTP(greeting="421 4.3.2 busy") as server, pytest.raises(BenchError) as err:
        _floor(server.port, 1, 1)
    assert "greeting: 421 4.3.2 busy" in err.value.message


def test_nobody_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(BenchError) as err:
            _floor(port, 1, 1)
    assert "connect to 127.0.0.1" in err.value.message
