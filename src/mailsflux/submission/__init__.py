"""SMTP submission: any application that speaks SMTP hands mail to Mailsflux.

A listener (aiosmtpd) on the submission port (587, STARTTLS) and, if asked,
on an implicit-TLS port (465). AUTH (PLAIN, LOGIN) is offered only once the
connection is encrypted; the username is a key id, the password its secret.
MAIL FROM must be an address the credential's tenant may send from, and the
credential needs the ``send`` role. Each message goes to the gateway, which
DKIM-signs it and stores every recipient's copy in the durable spool; the
client gets its 250 only after that returned. Replies carry enhanced status
codes; a throttled credential gets ``451 4.7.1``, an oversized message
``552 5.3.4``, a foreign sender ``553 5.7.1``.

    spec = SubmissionSpec(listen="0.0.0.0:587", implicit_tls_listen="0.0.0.0:465",
                          cert_file="tls/cert.pem", key_file="tls/key.pem")
    server = await start_submission(gateway, keys, spec, base=config_dir)
    server.ports                                    # {"starttls": 587, "implicit_tls": 465}
    ...
    server.close(); await server.wait_closed()      # in-flight spool writes finish first
"""

from __future__ import annotations

from mailsflux.submission.listener import (
    SEND_ROLE,
    SubmissionServer,
    error_reply,
    start_submission,
)
from mailsflux.submission.settings import SubmissionSpec

__all__ = [
    "SEND_ROLE",
    "SubmissionServer",
    "SubmissionSpec",
    "error_reply",
    "start_submission",
]
