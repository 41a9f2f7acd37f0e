"""Mailsflux: personalised, DKIM-signed, tracked mail over SMTP, fast."""

from mailsflux._errors import MailsfluxError

__version__ = "0.1.0"

__all__ = ["MailsfluxError", "__version__"]
