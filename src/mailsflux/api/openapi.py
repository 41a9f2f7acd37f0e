"""The OpenAPI 3.1 document, generated from the API's msgspec types."""

from __future__ import annotations

from typing import Any

import msgspec

from mailsflux.api.types import (
    Accepted,
    ErrorOut,
    EventsOut,
    JobIn,
    LettersIn,
    LettersOut,
    MessageIn,
    MessageOut,
    PrivacyIn,
    TemplateIn,
    TemplateOut,
)
from mailsflux.gateway import JobStatus

_REF = "#/components/schemas/{name}"


def _json(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", **_json("ErrorOut")} for c in codes}


def openapi_document(version: str) -> dict[str, Any]:
    (_, components) = msgspec.json.schema_components(
        (
            MessageIn,
            JobIn,
            LettersIn,
            LettersOut,
            PrivacyIn,
            TemplateIn,
            TemplateOut,
            Accepted,
            JobStatus,
            MessageOut,
            EventsOut,
            ErrorOut,
        ),
        ref_template=_REF,
    )
    idem = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": 200},
        "description": "A retried request with the same key gets the first answer.",
    }

    def path_id(what: str) -> dict[str, Any]:
        return {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                "description": what}  # fmt: skip

    return {
        "openapi": "3.1.0",
        "info": {"title": "Mailsflux", "version": version},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/messages": {
                "post": {
                    "summary": "Send one message (stored before the answer)",
                    "parameters": [idem],
                    "requestBody": {"required": True, **_json("MessageIn")},
                    "responses": {
                        "202": {"description": "stored, to be sent", **_json("Accepted")},
                        **_errors(400, 401, 403, 409, 413, 422, 503),
                    },
                }
            },
            "/v1/messages/{id}": {
                "get": {
                    "summary": "A message's state and events",
                    "parameters": [path_id("the id POST /v1/messages returned")],
                    "responses": {
                        "200": {"description": "found", **_json("MessageOut")},
                        **_errors(401, 403, 404),
                    },
                }
            },
            "/v1/jobs": {
                "post": {
                    "summary": "Start a job: a template and its recipients",
                    "parameters": [idem],
                    "requestBody": {"required": True, **_json("JobIn")},
                    "responses": {
                        "202": {"description": "stored, being sent", **_json("Accepted")},
                        **_errors(400, 401, 403, 409, 413, 422, 503),
                    },
                }
            },
            "/v1/letters": {
                "post": {
                    "summary": "Letters: a template rendered to a PDF per postal address,"
                    " handed to the carrier",
                    "parameters": [idem],
                    "requestBody": {"required": True, **_json("LettersIn")},
                    "responses": {
                        "200": {"description": "handed over (see problems)", **_json("LettersOut")},
                        **_errors(400, 401, 403, 409, 413, 422, 503),
                    },
                }
            },
            "/v1/jobs/{id}": {
                "get": {
                    "summary": "A job's state, counts and rate",
                    "parameters": [path_id("the job id")],
                    "responses": {
                        "200": {"description": "found", **_json("JobStatus")},
                        **_errors(401, 403, 404),
                    },
                }
            },
            "/v1/jobs/{id}/cancel": {
                "post": {
                    "summary": "Stop a job (what was handed on is still sent)",
                    "parameters": [path_id("the job id")],
                    "responses": {
                        "200": {"description": "cancelled", **_json("JobStatus")},
                        **_errors(401, 403, 404),
                    },
                }
            },
            "/v1/templates/{id}": {
                "put": {
                    "summary": "Store a template for template_id",
                    "parameters": [path_id("1 to 64 of A-Z a-z 0-9 . _ -")],
                    "requestBody": {"required": True, **_json("TemplateIn")},
                    "responses": {
                        "200": {"description": "stored", **_json("TemplateOut")},
                        **_errors(400, 401, 403, 413, 422),
                    },
                },
                "get": {
                    "summary": "A stored template",
                    "parameters": [path_id("the template id")],
                    "responses": {
                        "200": {"description": "found", **_json("TemplateOut")},
                        **_errors(401, 403, 404),
                    },
                },
            },
            "/v1/privacy/{action}": {
                "post": {
                    "summary": "A person's rights in this tenant (admin role), audited",
                    "parameters": [
                        {
                            "name": "action",
                            "in": "path",
                            "required": True,
                            "schema": {"enum": ["export", "erase", "correct", "object"]},
                        },
                    ],
                    "requestBody": {"required": True, **_json("PrivacyIn")},
                    "responses": {
                        "200": {"description": "done: counts, and for export the data"},
                        **_errors(400, 401, 403, 404, 422),
                    },
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "Events after a cursor, oldest first",
                    "parameters": [
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": {"description": "events", **_json("EventsOut")},
                        **_errors(400, 401, 403),
                    },
                }
            },
        },
    }
