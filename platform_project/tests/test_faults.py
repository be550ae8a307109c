"""Dependencies that fail and come back: each test ends with nothing lost and the platform
serving again. Run them alone with `make test PYTEST_ARGS="-m faults"`."""

import asyncio
import contextlib
import http.client
import json
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.backends.signals import connection_created
from django.test import override_settings

from conversations.models import Conversation, Message
from knowledge.models import Document
from testsupport.api import assert_error
from testsupport.documents import a_ready_document
from testsupport.environment import require_service
from testsupport.live import TIMEOUT, post, receive, socket_url, token, until
from testsupport.llm import use_provider
from testsupport.wire_server import wire_server

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


def redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }


def ask(people, message: str, path: str = "chat"):
    return people.client("end_user").post(
        f"/v1/tenants/{people.tenant.pk}/{path}", {"message": message}, format="json"
    )


def test_chat_with_the_cache_down_answers_503_and_recovers(tenant_a, private_redis, settings):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0  # no knowledge needed: the fault is the point
    with override_settings(CACHES=redis_cache(private_redis.url)):
        assert ask(tenant_a, "hello").status_code == 200

        private_redis.stop()
        for path in ("chat", "chat/stream"):
            assert_error(ask(tenant_a, "are you there?", path), 503, "cache_unavailable")

        private_redis.start()
        assert ask(tenant_a, "back again?").status_code == 200

    # The refused questions were refused before anything was saved; the others were answered.
    questions = list(Message.objects.filter(role="user").values_list("content", flat=True))
    assert questions == ["hello", "back again?"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_websocket_reports_a_cache_outage_as_an_error_event(tenant_a, private_redis, settings):
    from channels.testing import WebsocketCommunicator

    from accounts.services import token_pair_for
    from platform_project.routing import websocket_application
    from tenants.models import Membership

    membership = Membership.objects.get(user=tenant_a.end_user, tenant=tenant_a.tenant)
    access, _ = token_pair_for(user=tenant_a.end_user, membership=membership)
    path = f"/ws/tenants/{tenant_a.tenant.pk}/chat/?token={access}"

    async def scenario():
        communicator = WebsocketCommunicator(websocket_application, path)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_to(text_data=json.dumps({"type": "message", "message": "hello"}))
        event = json.loads(await communicator.receive_from(timeout=20))
        await communicator.send_to(text_data=json.dumps({"type": "ping"}))
        pong = json.loads(await communicator.receive_from(timeout=20))
        await communicator.disconnect()
        return event, pong

    with override_settings(CACHES=redis_cache(private_redis.url)):
        private_redis.stop()
        event, pong = asyncio.run(scenario())

    assert event["type"] == "error" and event["error"]["code"] == "cache_unavailable"
    assert pong == {"type": "pong"}  # the socket stays usable


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_upload_with_the_task_queue_down_is_taken_back_and_answered_503(
    tenant_a, private_redis, milvus_uri
):
    """The Celery broker is a private Redis that goes down: the upload is refused with 503 and
    leaves no document and no file; once the broker is back the same upload is accepted."""
    from platform_project.celery import app

    saved = app.conf.broker_url, app._pool
    app.conf.broker_url = private_redis.url
    app._pool = None
    app.amqp._producer_pool = None

    def upload():
        return tenant_a.client("tenant_admin").post(
            f"/v1/tenants/{tenant_a.tenant.pk}/documents/upload",
            {"file": SimpleUploadedFile("policy.txt", b"Refunds within 14 days.")},
            format="multipart",
        )

    try:
        private_redis.stop()
        refused = upload()
        assert_error(refused, 503, "task_queue_unavailable")
        assert not Document.objects.for_tenant(tenant_a.tenant).exists()

        private_redis.start()
        app._pool = None
        app.amqp._producer_pool = None
        assert upload().status_code == 202
        assert Document.objects.for_tenant(tenant_a.tenant).count() == 1
    finally:
        app.conf.broker_url, app._pool = saved
        app.amqp._producer_pool = None


def test_an_upload_with_the_cache_down_answers_503_and_leaves_nothing(tenant_a, private_redis, milvus_uri):
    """The cache (the upload throttle's store) is a private Redis that goes down: 503 before
    the file is read, nothing stored; served again once it is back."""
    media = Path(django_settings.MEDIA_ROOT)
    files_before = sorted(media.rglob("*"))

    def upload():
        return tenant_a.client("tenant_admin").post(
            f"/v1/tenants/{tenant_a.tenant.pk}/documents/upload",
            {"file": SimpleUploadedFile("returns.txt", b"Returns within 30 days.")},
            format="multipart",
        )

    with override_settings(CACHES=redis_cache(private_redis.url)):
        private_redis.stop()
        assert_error(upload(), 503, "cache_unavailable")
        assert not Document.objects.for_tenant(tenant_a.tenant).exists()
        assert sorted(media.rglob("*")) == files_before

        private_redis.start()
        assert upload().status_code == 202
    assert Document.objects.for_tenant(tenant_a.tenant).count() == 1


# --- The database connection dropped mid-request ---------------------------------------------
#
# PostgreSQL only: the platform's requests run in the live ASGI server (daphne in a thread of
# this process) on connections of their own, and a second connection terminates their server
# backend with `pg_terminate_backend`, as a server restart, a failover or a proxy would. A
# request through Django's test client would share the test's own connection, and killing it
# would end the test's transaction too.


@pytest.fixture(scope="session")
def postgresql():
    """Listed first, before the fixtures that start servers, so that a run on SQLite skips at
    once. With REQUIRE_SERVICES=1 (CI, which runs on PostgreSQL) SQLite is a failure, as for the
    other tests that need PostgreSQL, never a silent skip."""
    from django.db import connection

    if connection.vendor != "postgresql":
        require_service(
            "postgresql",
            "a dropped database connection is a PostgreSQL fault (SQLite has no server to lose); "
            "set DATABASE_URL=postgres://... to run it",
        )


class BackendKiller:
    """Terminates server backends of the platform's own connections, from a connection of its
    own. Every connection the platform opens outside the test's thread is recorded;
    `arm(sql)` terminates the backend of the next query containing `sql` just before that query
    is sent, so the connection dies under the request at a chosen point."""

    def __init__(self, settings_dict: dict):
        import psycopg

        params = {
            "dbname": settings_dict["NAME"],
            "user": settings_dict.get("USER") or None,
            "password": settings_dict.get("PASSWORD") or None,
            "host": settings_dict.get("HOST") or None,
            "port": settings_dict.get("PORT") or None,
        }
        self.admin = psycopg.connect(
            **{name: value for name, value in params.items() if value}, autocommit=True
        )
        self.lock = threading.Lock()
        self.test_thread = threading.get_ident()
        self.backends: list[int] = []
        self.killed: list[int] = []
        self.armed: str | None = None
        self.wrappers = weakref.WeakSet()

    def install(self) -> None:
        connection_created.connect(self._created, weak=False, dispatch_uid="fault-backend-killer")

    def uninstall(self) -> None:
        connection_created.disconnect(dispatch_uid="fault-backend-killer")
        for wrapper in list(self.wrappers):
            with contextlib.suppress(ValueError):
                wrapper.execute_wrappers.remove(self._before_query)
        self.admin.close()

    def _created(self, sender, connection, **kwargs):
        if threading.get_ident() == self.test_thread:
            return
        with self.lock:
            self.backends.append(connection.connection.info.backend_pid)
        if self._before_query not in connection.execute_wrappers:
            connection.execute_wrappers.append(self._before_query)
            self.wrappers.add(connection)

    def _before_query(self, execute, sql, params, many, context):
        with self.lock:
            fire = self.armed is not None and self.armed in sql
            if fire:
                self.armed = None
        if fire:
            self.terminate([context["connection"].connection.info.backend_pid])
        return execute(sql, params, many, context)

    def arm(self, sql: str) -> None:
        with self.lock:
            self.armed = sql

    def terminate(self, pids: list[int]) -> list[int]:
        """Terminate these backends (those still alive) and wait until they are gone."""
        with self.lock:
            # In the select list, not the WHERE clause: PostgreSQL may evaluate a condition on
            # rows that another condition would have filtered out.
            rows = self.admin.execute(
                "SELECT pid, pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = ANY(%s)",
                [pids],
            ).fetchall()
            killed = [pid for pid, terminated in rows if terminated]
            self.killed.extend(killed)
        return killed

    def terminate_platform_backends(self) -> list[int]:
        """Terminate every backend the platform has open now (the request's, mid-stream)."""
        with self.lock:
            backends = list(self.backends)
        return self.terminate(backends)


@pytest.fixture
def backend_killer(postgresql, transactional_db):
    from django.db import connection

    killer = BackendKiller(connection.settings_dict)
    killer.install()
    yield killer
    killer.uninstall()


@dataclass
class LiveResponse:
    status_code: int
    headers: dict
    content: bytes

    def json(self):
        return json.loads(self.content)


def live_request(server, method: str, path: str, *, bearer=None, body=None, headers=None) -> LiveResponse:
    address = urlsplit(server.http_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIMEOUT)
    sent = {"Accept": "application/json", **(headers or {})}
    if bearer:
        sent["Authorization"] = f"Bearer {bearer}"
    if body is not None:
        sent["Content-Type"] = "application/json"
    connection.request(method, path, body=None if body is None else json.dumps(body), headers=sent)
    response = connection.getresponse()
    try:
        return LiveResponse(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def sse_events(response) -> list[tuple[str, dict]]:
    """Read a live event stream to its end: (event, data) pairs."""
    return list(iter_sse(response))


def iter_sse(response):
    kind, data = None, []
    for raw in iter(response.readline, b""):
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif not line and kind:
            yield kind, json.loads("\n".join(data))
            kind, data = None, []


def a_conversation(people) -> Conversation:
    conversation = Conversation.objects.create(tenant=people.tenant, user=people.end_user, title="退貨")
    Message.objects.create(tenant=people.tenant, conversation=conversation, role="user", content="退貨政策")
    return conversation


def rows(conversation_id=None) -> list[tuple[str, str]]:
    messages = Message.objects.order_by("created_at", "pk")
    if conversation_id:
        messages = messages.filter(conversation_id=conversation_id)
    return [(message.role, message.content) for message in messages]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_list_whose_connection_drops_answers_503_and_the_next_request_is_served(
    postgresql, backend_killer, live_asgi, tenant_a
):
    a_ready_document(tenant_a.tenant)
    path = f"/v1/tenants/{tenant_a.tenant.pk}/documents"
    bearer = token(tenant_a, "tenant_admin")

    backend_killer.arm('FROM "knowledge_document"')
    refused = live_request(live_asgi, "GET", path, bearer=bearer)
    assert_error(refused, 503, "database_unavailable")
    assert len(backend_killer.killed) == 1

    served = live_request(live_asgi, "GET", path, bearer=bearer)
    assert served.status_code == 200, served.content
    assert [document["title"] for document in served.json()["results"]] == ["退貨政策"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chat_whose_connection_drops_while_saving_the_question_writes_nothing(
    postgresql, backend_killer, live_asgi, tenant_a, settings
):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0  # no knowledge needed: the fault is the point
    path = f"/v1/tenants/{tenant_a.tenant.pk}/chat"
    bearer = token(tenant_a, "end_user")

    # The conversation is inserted, then the connection dies as the question is.
    backend_killer.arm('INSERT INTO "conversations_message"')
    refused = live_request(live_asgi, "POST", path, bearer=bearer, body={"message": "Where is my parcel?"})
    assert_error(refused, 503, "database_unavailable")
    assert len(backend_killer.killed) == 1
    assert not Conversation.objects.exists()  # no conversation left without its question
    assert rows() == []

    answered = live_request(live_asgi, "POST", path, bearer=bearer, body={"message": "Where is my parcel?"})
    assert answered.status_code == 200, answered.content
    assert Conversation.objects.count() == 1
    assert [role for role, _ in rows()] == ["user", "assistant"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_closing_a_conversation_whose_connection_drops_leaves_it_open_then_closes(
    postgresql, backend_killer, live_asgi, tenant_a
):
    conversation = a_conversation(tenant_a)
    path = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation.pk}/close"
    bearer = token(tenant_a, "agent")

    backend_killer.arm('UPDATE "conversations_conversation"')
    assert_error(live_request(live_asgi, "POST", path, bearer=bearer), 503, "database_unavailable")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE and conversation.closed_at is None

    closed = live_request(live_asgi, "POST", path, bearer=bearer)
    assert closed.status_code == 200, closed.content
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED and conversation.closed_at is not None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_dashboard_page_whose_connection_drops_is_a_503_page_then_is_served(
    postgresql, backend_killer, live_asgi, tenant_a
):
    from django.test import Client

    browser = Client()
    browser.force_login(tenant_a.agent)
    cookie = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}", "Accept": "text/html"}
    a_conversation(tenant_a)
    path = f"/dashboard/t/{tenant_a.tenant.pk}/conversations/"

    backend_killer.arm('FROM "conversations_conversation"')
    refused = live_request(live_asgi, "GET", path, headers=cookie)
    assert refused.status_code == 503, refused.content[:500]
    assert b"database is unavailable" in refused.content
    assert len(backend_killer.killed) == 1

    served = live_request(live_asgi, "GET", path, headers=cookie)
    assert served.status_code == 200, served.content[:500]
    assert "退貨".encode() in served.content


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_sse_answer_whose_connection_drops_ends_with_an_error_event_and_the_next_turn_works(
    postgresql, backend_killer, live_asgi, tenant_a, settings
):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    path = f"/v1/tenants/{tenant_a.tenant.pk}/chat/stream"
    bearer = token(tenant_a, "end_user")
    with wire_server(api_key=None) as server:
        use_provider(tenant_a, server, "paced-30-40", kind="openai_compatible")

        stream = post(live_asgi, path, bearer, {"message": "Tell me everything."}, accept="text/event-stream")
        assert stream.status == 200
        events = []
        for kind, data in iter_sse(stream):
            events.append((kind, data))
            if len(events) == 3:
                # Three tokens in: the request's connection dies before the answer is saved.
                assert [kind for kind, _ in events] == ["token"] * 3
                assert backend_killer.terminate_platform_backends()

        kind, error = events[-1]
        assert kind == "error", events[-3:]
        assert error["error"]["code"] == "database_unavailable"
        assert "done" not in [kind for kind, _ in events]
        conversation_id = error["error"]["details"]["conversation_id"]

        again = post(
            live_asgi,
            path,
            bearer,
            {"message": "Are you back?", "conversation_id": conversation_id},
            accept="text/event-stream",
        )
        assert again.status == 200
        kind, done = sse_events(again)[-1]
        assert kind == "done" and done["message"]["status"] == "complete"

    # The question is kept; the answer being generated when the connection dropped is not.
    assert [role for role, _ in rows(conversation_id)] == ["user", "user", "assistant"]
    assert rows(conversation_id)[0] == ("user", "Tell me everything.")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_websocket_answer_whose_connection_drops_gets_an_error_event_and_the_socket_goes_on(
    postgresql, backend_killer, live_asgi, tenant_a, settings
):
    from websockets.asyncio.client import connect

    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    url = socket_url(live_asgi, tenant_a, "end_user")
    with wire_server(api_key=None) as server:
        use_provider(tenant_a, server, "paced-30-40", kind="openai_compatible")

        async def scenario():
            async with connect(url) as socket:
                await socket.send(json.dumps({"type": "message", "message": "Tell me everything."}))
                for _ in range(3):
                    assert (await receive(socket))["type"] == "token"
                # The socket's work runs in the worker threads, which hold no connection between
                # calls (tenants/blocking.py): the one that saves the answer is killed as it does.
                backend_killer.arm('INSERT INTO "conversations_message"')
                error, _ = await until(socket, "error")
                await socket.send(
                    json.dumps(
                        {
                            "type": "message",
                            "message": "Are you back?",
                            "conversation_id": error["conversation_id"],
                        }
                    )
                )
                done, _ = await until(socket, "done")
                return error, done

        error, done = asyncio.run(scenario())

    assert error["error"]["code"] == "database_unavailable", error
    assert done["message"]["status"] == "complete"
    conversation_id = error["conversation_id"]
    assert [role for role, _ in rows(conversation_id)] == ["user", "user", "assistant"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("health_checks", [False, True], ids=["no-health-checks", "health-checks"])
def test_a_persistent_connection_that_died_is_replaced(
    postgresql, backend_killer, tenant_a, monkeypatch, health_checks
):
    """With CONN_MAX_AGE > 0 one worker thread keeps its connection between requests (WSGI;
    under ASGI each request has a connection of its own). Killed while idle, it fails the next
    request with a 503, unless CONN_HEALTH_CHECKS checks it first; Django then finds it
    unusable at the end of that request and the one after connects anew."""
    from concurrent.futures import ThreadPoolExecutor

    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, connections
    from django.test import RequestFactory

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", health_checks)
    a_ready_document(tenant_a.tenant)
    handler = WSGIHandler()
    environ = (
        RequestFactory()
        .get(
            f"/v1/tenants/{tenant_a.tenant.pk}/documents",
            HTTP_AUTHORIZATION=f"Bearer {token(tenant_a, 'tenant_admin')}",
            HTTP_ACCEPT="application/json",
        )
        .environ
    )

    def request() -> LiveResponse:
        status = []
        response = handler(dict(environ), lambda line, headers: status.append(line))
        try:
            return LiveResponse(int(status[0].split()[0]), {}, b"".join(response))
        finally:
            response.close()  # request_finished: Django's close_old_connections

    with ThreadPoolExecutor(max_workers=1) as worker:
        try:
            first, second = worker.submit(request).result(), worker.submit(request).result()
            assert (first.status_code, second.status_code) == (200, 200), first.content
            assert len(backend_killer.backends) == 1  # one persistent connection
            assert backend_killer.terminate_platform_backends() == backend_killer.backends

            after_the_fault = worker.submit(request).result()
            if health_checks:
                assert after_the_fault.status_code == 200, after_the_fault.content
            else:
                assert_error(after_the_fault, 503, "database_unavailable")
            served = worker.submit(request).result()
            assert served.status_code == 200, served.content
            assert len(backend_killer.backends) == 2  # the dead one was replaced, once
        finally:
            worker.submit(connections.close_all).result()


def _wrapped(django_error: type[Exception], cause: Exception) -> Exception:
    """A driver error as Django re-raises it (`raise DjangoError(...) from cause`)."""
    try:
        try:
            raise cause
        except Exception as driver_error:
            raise django_error(*driver_error.args) from driver_error
    except django_error as wrapped:
        return wrapped


def _lost(sqlstate_class_name: str, message: str):
    import psycopg.errors

    return getattr(psycopg.errors, sqlstate_class_name)(message)


@pytest.mark.parametrize(
    ("django_error", "cause", "lost"),
    [
        ("OperationalError", ("AdminShutdown", "terminating connection due to administrator command"), True),
        ("OperationalError", ("CrashShutdown", "terminating connection because of crash of another"), True),
        ("OperationalError", ("CannotConnectNow", "the database system is shutting down"), True),
        ("OperationalError", ("ConnectionFailure", "server conn crashed?"), True),
        ("OperationalError", ("OperationalError", "server closed the connection unexpectedly"), True),
        ("OperationalError", ("OperationalError", "the connection is closed"), True),
        ("OperationalError", ("OperationalError", "connection failed: Connection refused"), True),
        ("OperationalError", ("QueryCanceled", "canceling statement due to statement timeout"), False),
        ("OperationalError", ("DeadlockDetected", "deadlock detected"), False),
        ("OperationalError", ("LockNotAvailable", "could not obtain lock"), False),
        ("OperationalError", ("IdleInTransactionSessionTimeout", "idle-in-transaction timeout"), False),
        ("InterfaceError", ("InterfaceError", "the cursor is closed"), False),
        ("ProgrammingError", ("UndefinedTable", 'relation "nowhere" does not exist'), False),
        ("IntegrityError", ("UniqueViolation", "duplicate key value"), False),
        ("DataError", ("NumericValueOutOfRange", "integer out of range"), False),
        ("OperationalError", ("sqlite3", "database is locked"), False),
    ],
    ids=lambda value: value[1] if isinstance(value, tuple) else None,
)
def test_only_a_lost_or_refused_connection_is_a_database_outage(django_error, cause, lost):
    import sqlite3

    from django.db import utils

    from tenants.errors import database_connection_lost, dependency_error

    kind, message = cause
    driver_error = sqlite3.OperationalError(message) if kind == "sqlite3" else _lost(kind, message)
    error = _wrapped(getattr(utils, django_error), driver_error)
    assert database_connection_lost(error) is lost
    unavailable = dependency_error(error)
    assert (unavailable.error_code if unavailable else None) == ("database_unavailable" if lost else None)


def test_a_statement_timeout_stays_a_server_error(postgresql):
    """A real query cancelled by `statement_timeout`: the server is up, the query too slow."""
    from django.db import OperationalError, connection, transaction

    from tenants.errors import api_exception_handler

    with pytest.raises(OperationalError) as raised, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 10")
            cursor.execute("SELECT pg_sleep(1)")
    assert api_exception_handler(raised.value, {}) is None  # Django's 500 handler answers
