"""Dependencies that fail and come back: each test ends with nothing lost and the platform
serving again. Run them alone with `make test PYTEST_ARGS="-m faults"`."""

import asyncio
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from conversations.models import Message
from knowledge.models import Document
from platform_project.tests.test_access_matrix import assert_error

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
