"""A real DNS server on loopback for tests: UDP and TCP on one free port.

Built from dnspython's message and rrset classes; it answers from a zone the
test gives as a plain dict and counts every query it receives::

    zone = {
        "example.com": {"MX": ["10 mx1.example.com.", "20 mx2.example.com."]},
        "mx1.example.com": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
        "alias.example.com": {"CNAME": ["example.com."]},
        "null.example": {"MX": ["0 ."]},
        "broken.example": SERVFAIL,            # every type answers SERVFAIL
        "slow.example": {"MX": DROP},          # MX queries get no answer at all
        "big.example": {TRUNCATE: True, "MX": ["10 mx1.example.com."]},  # TCP only
        "short.example": {"TTL": 5, "A": ["192.0.2.1"]},
        "signed.example": {AD: True, "MX": ["10 mx.signed.example."]},  # "validated"
        "_25._tcp.mx.signed.example": {AD: True, "TLSA": ["3 1 1 ab12..."]},
        "_mta-sts.example.com": {"TXT": ['"v=STSv1; id=1"']},
    }
    with DNSServer(zone) as dns:
        resolver = MXResolver(nameservers=[dns.address])
        ...
        assert dns.count("example.com", "MX") == 1

A name missing from the zone is NXDOMAIN; a name present without the asked
type is NODATA (NOERROR, empty answer). Negative answers carry the zone's SOA,
so resolvers can cache them. CNAMEs are chased inside the zone. The zone may
be changed while the server runs (``server.zone[...] = ...``). A name marked
``AD`` is answered with the AD bit, as a validating resolver says an answer
is DNSSEC-secure (RFC 4035 3.2.3); nothing else ever carries it.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

#: Per name or per type: answer SERVFAIL.
SERVFAIL = "SERVFAIL"
#: Per name or per type: answer REFUSED.
REFUSED = "REFUSED"
#: Per name or per type: never answer (the client times out).
DROP = "DROP"
#: Per name, as a key set to True: UDP answers come with TC=1 and no
#: records (the resolver retries over TCP), TCP answers are complete.
TRUNCATE = "TRUNCATE"
#: Per name, as a key set to True: answers carry the AD bit (DNSSEC-validated).
AD = "AD"

_SPECIAL = (SERVFAIL, REFUSED, DROP)
_SOA = "ns.test. hostmaster.test. 1 3600 600 86400 {minimum}"

Zone = dict[str, Any]


def _key(name: dns.name.Name | str) -> str:
    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.rstrip(".").lower()


class DNSServer:
    """Authoritative-style answers for ``zone`` on 127.0.0.1, in a thread."""

    def __init__(
        self, zone: Mapping[str, Any] | None = None, *, ttl: int = 300, negative_ttl: int = 60
    ) -> None:
        self.zone: Zone = {_key(k): v for k, v in (zone or {}).items()}
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.queries: Counter[tuple[str, str]] = Counter()
        self.transports: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._udp, self._tcp = self._bind()
        self.port: int = self._udp.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    # -- the test's side -------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def count(self, name: str | None = None, rdtype: str | None = None) -> int:
        """Queries received, optionally only for ``name`` and/or ``rdtype``."""
        with self._lock:
            return sum(
                n
                for (qname, qtype), n in self.queries.items()
                if (name is None or qname == _key(name)) and (rdtype is None or qtype == rdtype)
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.queries.clear()
            self.transports.clear()

    def __enter__(self) -> DNSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._udp.close()
        self._tcp.close()

    # -- sockets ---------------------------------------------------------

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        # UDP on a free port, then TCP on the same number (resolvers use one
        # port for both); retry when that number is taken for TCP.
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        raise OSError("no free port for both UDP and TCP")

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        sel.register(self._tcp, selectors.EVENT_READ, "tcp")
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.05):
                    if key.data == "udp":
                        self._serve_udp()
                    else:
                        self._serve_tcp()
        finally:
            sel.close()

    def _serve_udp(self) -> None:
        try:
            wire, peer = self._udp.recvfrom(65535)
        except OSError:
            return
        answer = self._answer(wire, "udp")
        if answer is not None:
            self._udp.sendto(answer, peer)

    def _serve_tcp(self) -> None:
        try:
            conn, _ = self._tcp.accept()
        except OSError:
            return
        with conn:
            conn.setblocking(True)
            conn.settimeout(2.0)
            try:
                while True:
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    wire = _recv_exact(conn, struct.unpack("!H", head)[0])
                    if wire is None:
                        return
                    answer = self._answer(wire, "tcp")
                    if answer is None:
                        return
                    conn.sendall(struct.pack("!H", len(answer)) + answer)
            except OSError:
                return

    # -- answers ---------------------------------------------------------

    def _answer(self, wire: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        if not query.question:
            return None
        question = query.question[0]
        qname = _key(question.name)
        qtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries[(qname, qtype)] += 1
            self.transports[transport] += 1
            zone = dict(self.zone)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        behaviour = self._fill(response, zone, question.name, question.rdtype, transport)
        if behaviour == DROP:
            return None
        if behaviour == SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
            del response.answer[:]
        elif behaviour == REFUSED:
            response.set_rcode(dns.rcode.REFUSED)
            del response.answer[:]
        elif behaviour == TRUNCATE:
            response.flags |= dns.flags.TC
            del response.answer[:]
        entry = zone.get(qname)
        if isinstance(entry, dict) and entry.get(AD) and behaviour is None:
            response.flags |= dns.flags.AD
        return response.to_wire()

    def _fill(
        self,
        response: dns.message.Message,
        zone: Zone,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        transport: str,
    ) -> str | None:
        """Add the answer for ``name``/``rdtype`` (chasing CNAMEs); a behaviour or None."""
        for _ in range(8):
            entry = zone.get(_key(name))
            if entry is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                self._soa(response, name)
                return None
            if isinstance(entry, str) and entry in _SPECIAL:
                return entry
            ttl = int(entry.get("TTL", self.ttl))
            if entry.get(TRUNCATE) and transport == "udp":
                return TRUNCATE
            wanted = dns.rdatatype.to_text(rdtype)
            if wanted in entry:
                records = entry[wanted]
                if isinstance(records, str) and records in _SPECIAL:
                    return records
                response.answer.append(
                    dns.rrset.from_text_list(name, ttl, dns.rdataclass.IN, rdtype, list(records))
                )
                return None
            if "CNAME" in entry and rdtype != dns.rdatatype.CNAME:
                cname = dns.rrset.from_text_list(
                    name, ttl, dns.rdataclass.IN, dns.rdatatype.CNAME, list(entry["CNAME"])
                )
                response.answer.append(cname)
                name = cname[0].target
                continue
            self._soa(response, name)  # NODATA
            return None
        return SERVFAIL

    def _soa(self, response: dns.message.Message, name: dns.name.Name) -> None:
        # The SOA of the name's top-level domain: a superdomain, as resolvers want.
        owner = dns.name.Name(name.labels[-2:]) if len(name.labels) >= 2 else dns.name.root
        response.authority.append(
            dns.rrset.from_text(
                owner,
                self.negative_ttl,
                "IN",
                "SOA",
                _SOA.format(minimum=self.negative_ttl),
            )
        )


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
