"""The HTTP API (ASGI, msgspec bodies, served by uvicorn in ``mailsflux serve``)."""

from mailsflux.api.app import ApiApp, MetricsApp
from mailsflux.api.openapi import openapi_document
from mailsflux.api.types import Accepted, JobIn, MessageIn, TemplateIn

__all__ = [
    "Accepted",
    "ApiApp",
    "JobIn",
    "MessageIn",
    "MetricsApp",
    "TemplateIn",
    "openapi_document",
]
