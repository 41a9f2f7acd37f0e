"""/healthz, /readyz, /metrics (Prometheus text) and the OpenAPI document."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, call, new_key, server_config


def test_health_metrics_and_openapi(tmp_path: Path) -> None:
    with SMTPServer(RecordingHandler()) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:
            assert srv.call("GET", "/healthz")[0] == 200
            assert srv.call("GET", "/readyz")[2] == {"ready": True}
            msg = {"sender": "a@acme.example", "to": "x@example.net", "subject": "s", "text": "t"}
            assert srv.call("POST", "/v1/messages", msg, key=key)[0] == 202
            # /metrics is on the operator's listener only, not the tenants' port.
            assert srv.call("GET", "/metrics", key=key)[0] == 404
            s, h, text = call(srv.metrics_port, "GET", "/metrics")
            assert s == 200 and h["content-type"].startswith("text/plain")
            samples = {
                (m.name, tuple(sorted(x.labels.items()))): x.value
                for f in text_string_to_metric_families(text)
                for m in [f]
                for x in f.samples
            }
            assert samples[("mailsflux_accepted_messages", (("door", "http"),))] == 1.0
            assert ("mailsflux_spool_bytes", (("tenant", "acme"),)) in samples
            assert any(k[0] == "mailsflux_request_seconds" for k in samples)
            # The message is delivered: a result, a delivery latency, a site seen.
            for _ in range(100):
                text = call(srv.metrics_port, "GET", "/metrics")[2]
                if 'mailsflux_delivery_results_total{outcome="delivered"} 1.0' in text:
                    break
                time.sleep(0.05)
            assert "mailsflux_delivery_seconds_count 1.0" in text
            assert 'mailsflux_site_queue_depth{site="' in text

            s, _, doc = srv.call("GET", "/v1/openapi.json")
            assert s == 200 and doc["openapi"].startswith("3.1")
            schemas = doc["components"]["schemas"]
            assert {"MessageIn", "JobIn", "Accepted", "JobStatus", "EventsOut"} <= set(schemas)
            assert "to" in schemas["MessageIn"]["required"]
            assert schemas["MessageIn"]["additionalProperties"] is False
            post = doc["paths"]["/v1/messages"]["post"]
            assert post["responses"]["202"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Accepted"
            }
            # Every $ref points at a schema that exists.
            refs = [r.rsplit("/", 1)[1] for r in _refs(doc)]
            assert refs and all(r in schemas for r in refs)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
