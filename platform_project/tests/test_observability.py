"""Metrics and structured logs: who may read GET /metrics, the families and their labels moving
after a request, a chat turn, a socket and a task (on a real worker), the request id from the
caller to the response, the log line, a WebSocket turn and a Celery task; secrets never logged."""

import asyncio
import io
import json
import logging
import re
import socket
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from knowledge.models import Document
from tenants import logcontext, metrics
from testsupport.api import assert_error
from testsupport.live import receive, socket_url, token, until
from testsupport.people import client_for
from testsupport.wire_server import wire_server

FAMILIES = {
    "platform_http_requests",
    "platform_http_request_duration_seconds",
    "platform_websockets_open",
    "platform_chat_time_to_first_token_seconds",
    "platform_chat_tokens_per_second",
    "platform_chat_messages",
    "platform_llm_tokens",
    "platform_llm_provider_duration_seconds",
    "platform_llm_provider_errors",
    "platform_retrieval_duration_seconds",
    "platform_celery_task_duration_seconds",
    "platform_celery_task_failures",
    "platform_documents",
    "platform_ingestion_queue_depth",
}
METRICS_TOKEN = "metrics-token-0123456789abcdef"


def scrape(client=None, **headers) -> str:
    from django.test import Client

    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels) -> float:
    """The sample's value (0 when it does not exist yet)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def log_lines():
    """What the configured console handler writes, as JSON lines, while the test runs."""
    handlers = [handler for handler in logging.getLogger().handlers if handler.get_name() == "console"]
    assert handlers, "the LOGGING setting's console handler is not installed"
    handler = handlers[0]
    stream, formatter = io.StringIO(), handler.formatter
    previous = handler.setStream(stream)
    handler.setFormatter(logcontext.JSONFormatter())

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]

    read.text = stream.getvalue
    yield read
    handler.setStream(previous)
    handler.setFormatter(formatter)


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_answers_loopback_in_prometheus_format_with_every_family(anonymous):
    response = anonymous.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert FAMILIES <= names, FAMILIES - names


@pytest.mark.django_db
def test_metrics_is_not_found_from_other_addresses_when_no_token_is_configured(anonymous, settings):
    settings.METRICS_TOKEN = ""
    response = anonymous.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert_error(response, 404, "not_found")
    assert b"platform_" not in response.content


@pytest.mark.django_db
def test_metrics_needs_the_configured_bearer_token_from_other_addresses(anonymous, settings, tenant_a):
    settings.METRICS_TOKEN = METRICS_TOKEN
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    missing = anonymous.get("/metrics", **remote)
    assert_error(missing, 401, "not_authenticated")
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert_error(anonymous.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token-0123456789", **remote), 401)
    # A member's access token is no metrics token.
    member = token(tenant_a, "tenant_admin")
    assert_error(anonymous.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {member}", **remote), 401)
    allowed = anonymous.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}", **remote)
    assert allowed.status_code == 200
    assert b"platform_http_requests" in allowed.content


@pytest.mark.django_db
def test_metrics_allows_configured_networks_and_honours_the_proxy_count(anonymous, settings):
    settings.METRICS_ALLOWED_ADDRESSES = ["10.0.0.0/8"]
    assert anonymous.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert_error(anonymous.get("/metrics", REMOTE_ADDR="127.0.0.1"), 404)
    # Behind one trusted proxy the client is the header's last entry, not the proxy.
    settings.TRUSTED_PROXY_COUNT = 1
    proxied = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert_error(anonymous.get("/metrics", **proxied), 404)
    assert (
        anonymous.get("/metrics", REMOTE_ADDR="203.0.113.1", HTTP_X_FORWARDED_FOR="10.1.1.1").status_code
        == 200
    )


@pytest.mark.django_db
def test_metrics_refuses_other_methods_in_the_error_format(anonymous):
    response = anonymous.post("/metrics")
    assert_error(response, 405, "method_not_allowed")


# --- Families moving ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_http_requests_are_counted_by_route_template_never_by_path(tenant_a, objects_of_a):
    client = client_for(tenant_a.tenant_admin, tenant=tenant_a.tenant)
    route = "v1/tenants/<uuid:tenant_id>/documents/<int:pk>"
    before = scrape()
    path = f"/v1/tenants/{tenant_a.tenant.pk}/documents/{objects_of_a['document']}"
    assert client.get(path).status_code == 200
    assert client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents/999999").status_code == 404
    after = scrape()

    for status in ("200", "404"):
        count = "platform_http_requests_total"
        assert value(after, count, method="GET", route=route, status=status) == (
            value(before, count, method="GET", route=route, status=status) + 1
        )
    histogram = "platform_http_request_duration_seconds_count"
    assert (
        value(after, histogram, method="GET", route=route)
        == value(before, histogram, method="GET", route=route) + 2
    )
    labels = {
        label for (name, pairs) in samples(after) if name.startswith("platform_http") for label in pairs
    }
    assert not [pair for pair in labels if str(tenant_a.tenant.pk) in pair[1] or "999999" in pair[1]]


@pytest.mark.django_db
def test_the_database_gauges_count_documents_by_status_at_scrape_time(tenant_a, objects_of_a):
    before = scrape()
    Document.objects.filter(pk=objects_of_a["document"]).update(status=Document.Status.PENDING)
    after = scrape()
    assert (
        value(after, "platform_documents", status="pending")
        == value(before, "platform_documents", status="pending") + 1
    )
    assert (
        value(after, "platform_documents", status="ready")
        == value(before, "platform_documents", status="ready") - 1
    )
    assert (
        value(after, "platform_ingestion_queue_depth") == value(before, "platform_ingestion_queue_depth") + 1
    )


@pytest.mark.django_db
def test_a_chat_turn_moves_time_to_first_token_tokens_retrieval_and_the_provider(
    tenant_a, milvus_uri, settings
):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0  # no knowledge needed: the offline provider answers
    tenant = metrics.tenant_label(tenant_a.tenant.pk)
    before = scrape()
    response = client_for(tenant_a.end_user, tenant=tenant_a.tenant).post(
        f"/v1/tenants/{tenant_a.tenant.pk}/chat", {"message": "Hello there"}, format="json"
    )
    assert response.status_code == 200, response.content
    usage = response.json()["usage"]
    after = scrape()

    def moved(name, by=1.0, **labels):
        return value(after, name, **labels) - value(before, name, **labels) == pytest.approx(by)

    assert moved("platform_chat_time_to_first_token_seconds_count", channel="api")
    assert moved("platform_chat_messages_total", tenant=tenant, channel="api")
    assert moved("platform_llm_tokens_total", by=usage["completion_tokens"], tenant=tenant, kind="completion")
    assert moved("platform_llm_tokens_total", by=usage["prompt_tokens"], tenant=tenant, kind="prompt")
    assert moved("platform_chat_tokens_per_second_count", provider="offline")
    assert moved("platform_retrieval_duration_seconds_count", mode="hybrid")
    assert moved("platform_llm_provider_duration_seconds_count", provider="offline", outcome="ok")


def test_tenant_labels_are_capped_and_the_rest_count_as_other(settings, monkeypatch):
    monkeypatch.setattr(metrics, "_tenant_labels", set())
    settings.METRICS_TENANT_LABEL_LIMIT = 2
    assert [metrics.tenant_label(tenant) for tenant in ("t1", "t2", "t3", "t1", "t4")] == [
        "t1",
        "t2",
        "other",
        "t1",
        "other",
    ]


# --- Request ids and log lines -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sane_request_id_comes_back_and_is_on_the_request_line(tenant_a, log_lines):
    client = client_for(tenant_a.agent, tenant=tenant_a.tenant)
    response = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents", HTTP_X_REQUEST_ID="req-42.abc_DEF")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-42.abc_DEF"
    [line] = [line for line in log_lines() if line["logger"] == "platform.request"]
    assert line["request_id"] == "req-42.abc_DEF"
    assert line["tenant_id"] == str(tenant_a.tenant.pk)
    assert line["user_id"] == str(tenant_a.agent.pk)
    assert line["route"] == "v1/tenants/<uuid:tenant_id>/documents"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["duration_ms"] > 0


@pytest.mark.django_db
@pytest.mark.parametrize("sent", [None, "", "x" * 129, "has space", 'quote"d', "line\nbreak", "ünïcode"])
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(anonymous, sent):
    headers = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = anonymous.get("/healthz", **headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_a_visitor_request_line_names_the_visitor(tenant_a, objects_of_a, anonymous, log_lines):
    from widgets.models import Widget

    widget = Widget.objects.get(pk=objects_of_a["widget"])
    session = anonymous.post(
        "/v1/widget/sessions",
        {"public_key": widget.public_key},
        format="json",
        HTTP_ORIGIN="https://shop.example.com",
    )
    assert session.status_code == 201, session.content
    anonymous.get("/v1/widget/conversations", HTTP_AUTHORIZATION=f"Bearer {session.json()['token']}")
    [line] = [
        line
        for line in log_lines()
        if line["logger"] == "platform.request" and line["route"] == "v1/widget/conversations"
    ]
    assert line["tenant_id"] == str(tenant_a.tenant.pk)
    assert line["visitor_id"]
    assert "user_id" not in line


@pytest.mark.faults
@pytest.mark.django_db
def test_a_provider_key_and_a_jwt_never_reach_the_logs(tenant_a, milvus_uri, settings, log_lines):
    from llm.services import assistant_update

    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    provider_key = "sk-live-never-log-me-0123456789abcdef"
    with wire_server(api_key="the-right-key-0123456789") as server:
        # The key is refused (401), and the server's error message quotes it back, as some do.
        server.fail_with(401, message=f"Incorrect API key provided: {provider_key}")
        assistant_update(
            tenant=tenant_a.tenant,
            data={
                "providers": [
                    {
                        "kind": "openai",
                        "model": "gpt-test",
                        "base_url": server.base_url,
                        "api_key": provider_key,
                    }
                ]
            },
        )
        bearer = token(tenant_a, "end_user")
        response = client_for(tenant_a.end_user, tenant=tenant_a.tenant).post(
            f"/v1/tenants/{tenant_a.tenant.pk}/chat",
            {"message": "Hello"},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {bearer}",
        )
    assert response.status_code == 503, response.content
    # A careless line that names both is written without them too.
    logging.getLogger("platform.careless").warning(
        "token=%s key %s header Bearer %s", bearer, provider_key, bearer
    )

    text = log_lines.text()
    assert "failed before answering" in text  # the provider's failure was logged
    assert "platform.careless" in text
    assert bearer not in text
    assert bearer.split(".")[1] not in text  # not even the payload
    assert provider_key not in text


def test_the_text_format_redacts_as_well():
    formatter = logcontext.TextFormatter()
    record = logging.LogRecord(
        "x",
        logging.WARNING,
        __file__,
        1,
        "calling with %s",
        ("api_key=abcdef123456 sk-proj-0123456789",),
        None,
    )
    line = formatter.format(record)
    assert "abcdef123456" not in line and "sk-proj-0123456789" not in line


# --- Over real connections: a WebSocket, a Celery worker ------------------------------------------


def _scrape_over_http(url: str, **headers) -> str:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local test server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a local test server
        return response.read().decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_task_carries_the_request_id_and_the_worker_exposes_its_metrics(
    celery_worker_process, tenant_a, tenant_b, platform_admin, tmp_path, monkeypatch
):
    port = _free_port()
    shared = tmp_path / "prometheus"
    shared.mkdir()
    output = tmp_path / "worker.log"
    celery_worker_process(
        output=output,
        loglevel="info",
        PROMETHEUS_MULTIPROC_DIR=str(shared),
        METRICS_WORKER_PORT=str(port),
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    # Deleting a tenant queues the task that purges its files and vectors (tenants/tasks.py).
    response = client_for(platform_admin).delete(
        f"/v1/tenants/{tenant_b.tenant.pk}", HTTP_X_REQUEST_ID="delete-tenant-b-0001"
    )
    assert response.status_code == 204, response.content
    assert response["X-Request-ID"] == "delete-tenant-b-0001"

    task = "tenants.tasks.purge_tenant_data"
    deadline = time.monotonic() + 60
    task_lines: list[dict] = []
    while time.monotonic() < deadline and not task_lines:
        time.sleep(0.2)
        text = output.read_text() if output.exists() else ""
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        task_lines = [
            line for line in lines if line["logger"] == "platform.task" and line.get("task") == task
        ]
    assert task_lines, f"no task line in the worker's output:\n{text[-3000:]}"
    assert task_lines[0]["request_id"] == "delete-tenant-b-0001"
    assert task_lines[0]["state"] == "SUCCESS"
    assert task_lines[0]["task_id"]

    # The worker's own port: its prefork child's task, summed through the multiprocess directory.
    worker = _scrape_over_http(f"http://127.0.0.1:{port}/metrics")
    assert value(worker, "platform_celery_task_duration_seconds_count", task=task, state="SUCCESS") == 1
    assert "platform_documents" not in worker  # the database gauges are the web's
    # make run's layout: the web process reads the same directory, so its /metrics shows the task.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    web = scrape()
    assert value(web, "platform_celery_task_duration_seconds_count", task=task, state="SUCCESS") == 1
    assert value(web, "platform_documents", status="ready") >= 0


# Live tests restore the migrations' rows (plans) after one another, as the other socket tests do.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_open_sockets_are_gauged_and_a_turn_logs_with_its_own_request_id(
    live_asgi, tenant_a, settings, log_lines
):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    metrics_url = f"{live_asgi.http_url}/metrics"
    open_sockets = "platform_websockets_open"
    chat_url = socket_url(live_asgi, tenant_a, "end_user")

    async def scenario():
        before = value(await asyncio.to_thread(_scrape_over_http, metrics_url), open_sockets, kind="member")
        async with connect(chat_url) as chat_socket:
            await chat_socket.send(json.dumps({"type": "ping"}))
            assert (await receive(chat_socket))["type"] == "pong"
            during = value(
                await asyncio.to_thread(_scrape_over_http, metrics_url), open_sockets, kind="member"
            )
            await chat_socket.send(json.dumps({"type": "message", "message": "Hello"}))
            await until(chat_socket, "done")
        for _ in range(50):  # the server sees the close a moment later
            after = value(
                await asyncio.to_thread(_scrape_over_http, metrics_url), open_sockets, kind="member"
            )
            if after == before:
                break
            await asyncio.sleep(0.1)
        return before, during, after

    before, during, after = asyncio.run(scenario())
    assert during == before + 1
    assert after == before
    [turn] = [line for line in log_lines() if line["message"].startswith("WebSocket turn")]
    assert turn["outcome"] == "done"
    assert re.fullmatch(r"[0-9a-f]{32}", turn["request_id"])
    assert turn["tenant_id"] == str(tenant_a.tenant.pk)
    assert turn["user_id"] == str(tenant_a.end_user.pk)
    assert turn["route"] == "ws/tenants/<uuid:tenant_id>/chat/"
