"""PostgreSQL row-level security, the second wall (tenants/rls.py): with a tenant's scope on the
connection, a query that forgot its tenant filter still returns nothing of another tenant.

PostgreSQL only, as an ordinary role (superusers and BYPASSRLS roles are not subject to
policies; `.ci/run` connects as one that is)."""

import asyncio
import json
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, connection, transaction
from websockets.asyncio.client import connect

from conversations.models import Conversation, Message
from knowledge.models import Document
from tenants import rls
from tenants.audit import audit_record
from tenants.models import Membership, TenantQuerySet
from testsupport.environment import require_service
from testsupport.live import receive, socket_url

pytestmark = pytest.mark.service

# Every tenant-owned table the platform has today; the policy list must cover at least these.
EXPECTED_TABLES = {
    "accounts_invitation",
    "conversations_conversation",
    "conversations_feedback",
    "conversations_message",
    "knowledge_chunk",
    "knowledge_document",
    "knowledge_faq",
    "knowledge_keywordcorpus",
    "knowledge_termfrequency",
    "llm_providerconfig",
    "llm_usageday",
    "tenants_auditevent",
    "tenants_membership",
}


@pytest.fixture(autouse=True)
def _postgresql_without_bypass(db):
    if connection.vendor != "postgresql":
        require_service("postgresql", "row-level security is PostgreSQL's; set DATABASE_URL to run it")
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        (bypasses,) = cursor.fetchone()
    if bypasses:
        require_service(
            "postgresql role without BYPASSRLS",
            "connected as a superuser or BYPASSRLS role, which policies do not apply to "
            "(.ci/run connects as the ordinary role 'platform')",
        )


def _document(tenant, title: str) -> Document:
    return Document.objects.create(
        tenant=tenant,
        title=title,
        filename=f"{title}.txt",
        kind="txt",
        content_type="text/plain",
        size_bytes=10,
        sha256=title.ljust(64, "0")[:64],
        file_path=f"x/{title}.txt",
    )


def _conversation(people, text: str) -> Conversation:
    conversation = Conversation.objects.create(tenant=people.tenant, user=people.end_user, title=text)
    Message.objects.create(
        tenant=people.tenant, conversation=conversation, role="user", author=people.end_user, content=text
    )
    return conversation


@pytest.fixture
def two_tenants(tenant_a, tenant_b):
    _document(tenant_a.tenant, "secret-of-a")
    _conversation(tenant_a, "question of A")
    audit_record(tenant=tenant_a.tenant, action="test.a")
    _document(tenant_b.tenant, "own-of-b")
    _conversation(tenant_b, "question of B")
    return tenant_a, tenant_b


def _rows_of(table: str, quoted_column: str, tenant_id) -> int:
    """Raw SQL with no ORM in the way; the names come from the models' metadata."""
    sql = f"SELECT count(*) FROM {connection.ops.quote_name(table)} WHERE {quoted_column} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant_id])
        return cursor.fetchone()[0]


def test_every_tenant_owned_table_has_a_forced_policy():
    tables = {table for table, _tenant, _user in rls.tenant_owned_fields(connection)}
    assert EXPECTED_TABLES <= tables
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass", [table]
            )
            assert cursor.fetchone() == (True, True), table
            cursor.execute("SELECT policyname, cmd FROM pg_policies WHERE tablename = %s ORDER BY 1", [table])
            expected = [(rls.POLICY_NAME, "ALL")]
            if table == "tenants_membership":
                expected.insert(0, (rls.OWN_MEMBERSHIPS_POLICY, "SELECT"))
            assert cursor.fetchall() == expected, table


def test_migrate_lifts_the_policies_and_puts_them_back():
    """PostgreSQL refuses to alter a column a policy uses: `migrate` drops them first."""
    rls.drop_policies()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_policies WHERE policyname = %s", [rls.POLICY_NAME])
        assert cursor.fetchone() == (0,)
    assert set(rls.apply_policies()) >= EXPECTED_TABLES


def test_an_unscoped_query_in_a_tenants_scope_returns_nothing_of_another_tenant(two_tenants):
    tenant_a, tenant_b = two_tenants
    owned = rls.tenant_owned_fields(connection)
    # Outside any scope (migrations, operators' pages) every row is there.
    assert sum(_rows_of(table, tenant[0], tenant_a.tenant.pk) for table, tenant, _ in owned) > 5

    with rls.scope(tenant_b.tenant.pk, tenant_b.tenant_admin.pk):
        # No tenant filter at all: the ORM and raw SQL alike.
        assert [d.title for d in Document.objects.all()] == ["own-of-b"]
        assert [m.content for m in Message.objects.all()] == ["question of B"]
        assert {c.tenant_id for c in Conversation.objects.all()} == {tenant_b.tenant.pk}
        for table, tenant, _user in owned:
            assert _rows_of(table, tenant[0], tenant_a.tenant.pk) == 0, table
        # Tenant A's rows cannot be changed, deleted or written either.
        assert Document.objects.filter(tenant=tenant_a.tenant).update(title="changed") == 0
        assert Message.objects.filter(tenant=tenant_a.tenant).delete()[0] == 0
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            _document(tenant_a.tenant, "planted-in-a")

    assert Document.objects.get(tenant=tenant_a.tenant).title == "secret-of-a"
    assert Message.objects.filter(tenant=tenant_a.tenant).count() == 1


def test_people_see_their_own_memberships_in_other_tenants_but_cannot_change_them(two_tenants):
    tenant_a, tenant_b = two_tenants
    elsewhere = Membership.objects.create(tenant=tenant_a.tenant, user=tenant_b.agent, role="agent")
    with rls.scope(tenant_b.tenant.pk, tenant_b.agent.pk):
        visible = {(m.tenant_id, m.user_id) for m in Membership.objects.all()}
        # Read-only: from B's scope the agent cannot promote themselves in A, nor join it again.
        assert Membership.objects.filter(pk=elsewhere.pk).update(role="tenant_admin") == 0
        assert Membership.objects.filter(pk=elsewhere.pk).delete()[0] == 0
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            Membership.objects.create(tenant=tenant_a.tenant, user=tenant_b.end_user, role="tenant_admin")
    # All of B's, and the agent's own membership in A (the tenant switcher), no one else's in A.
    assert (tenant_a.tenant.pk, tenant_b.agent.pk) in visible
    assert {tenant for tenant, user in visible if user != tenant_b.agent.pk} == {tenant_b.tenant.pk}
    assert Membership.objects.get(pk=elsewhere.pk).role == "agent"


def test_a_rolled_back_scope_change_is_applied_again(two_tenants):
    tenant_a, tenant_b = two_tenants
    with transaction.atomic(), rls.scope(tenant_a.tenant.pk):
        assert Document.objects.get().title == "secret-of-a"
        token = None
        with pytest.raises(RuntimeError), transaction.atomic():
            # As a view does: the scope is entered inside a transaction and outlives it.
            token = rls.enter(tenant_b.tenant.pk)
            assert Document.objects.get().title == "own-of-b"
            raise RuntimeError("roll the savepoint back, and with it the setting made inside")
        # The rollback put the connection back in A's scope while the code is in B's: the
        # backend must apply B's again rather than trust what it applied last.
        assert Document.objects.get().title == "own-of-b"
        rls.leave(token)
        assert Document.objects.get().title == "secret-of-a"
    assert Document.objects.count() == 2


@pytest.fixture
def forgotten_filter(monkeypatch):
    """A bug in the first wall: the tenant filter of every scoped query is gone."""
    monkeypatch.setattr(TenantQuerySet, "for_tenant", lambda self, tenant: self.all())
    monkeypatch.setattr(TenantQuerySet, "for_tenant_id", lambda self, tenant_id: self.all())


def test_the_api_shows_nothing_of_another_tenant_even_without_its_filter(two_tenants, forgotten_filter):
    tenant_a, tenant_b = two_tenants
    client = tenant_b.client("tenant_admin")
    documents = client.get(f"/v1/tenants/{tenant_b.tenant.pk}/documents")
    assert documents.status_code == 200, documents.content
    assert [d["title"] for d in documents.json()["results"]] == ["own-of-b"]
    conversations = client.get(f"/v1/tenants/{tenant_b.tenant.pk}/chat/conversations")
    assert [c["title"] for c in conversations.json()["results"]] == ["question of B"]
    # And after the request the connection is no longer scoped (operators' views see all).
    assert Document.objects.count() == 2


def test_the_dashboard_shows_nothing_of_another_tenant_even_without_its_filter(
    client, two_tenants, forgotten_filter
):
    tenant_a, tenant_b = two_tenants
    client.force_login(tenant_b.tenant_admin)
    page = client.get(f"/dashboard/t/{tenant_b.tenant.pk}/documents/")
    assert page.status_code == 200
    assert b"own-of-b" in page.content
    assert b"secret-of-a" not in page.content


def test_without_the_second_wall_the_forgotten_filter_would_leak(two_tenants, forgotten_filter):
    """The control: the same bug with no scope on the connection shows tenant A's rows, so the
    tests above pass because of the policies, not because the data is missing."""
    tenant_a, tenant_b = two_tenants
    assert {d.title for d in Document.objects.for_tenant(tenant_b.tenant)} == {"secret-of-a", "own-of-b"}


def _database_tenant_setting():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [rls.TENANT_SETTING])
        return cursor.fetchone()[0]


def test_the_ingestion_task_runs_in_its_documents_tenant_scope(two_tenants, monkeypatch):
    from knowledge import ingestion, tasks

    tenant_a, _tenant_b = two_tenants
    document = Document.objects.get(tenant=tenant_a.tenant)
    seen = {}

    def ingest(*, tenant_id, document_ids, batch):
        seen["setting"] = _database_tenant_setting()
        seen["documents"] = [d.pk for d in Document.objects.all()]
        return {document_id: document.status for document_id in document_ids}

    monkeypatch.setattr(ingestion, "documents_ingest", ingest)
    assert tasks.ingest_documents.apply(args=[str(tenant_a.tenant.pk), [document.pk]]).get() == {
        str(document.pk): document.status
    }
    assert seen == {"setting": str(tenant_a.tenant.pk), "documents": [document.pk]}
    # The worker's connection is not left in the tenant's scope.
    assert _database_tenant_setting() in ("", None)


# --- Outside the test's transaction: each statement commits, as in production ----------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_scope_holds_across_autocommitted_statements_and_a_rollback(two_tenants):
    tenant_a, tenant_b = two_tenants
    with rls.scope(tenant_b.tenant.pk):
        # Several statements, each its own transaction: a setting local to one would be gone.
        for _ in range(3):
            assert [d.title for d in Document.objects.all()] == ["own-of-b"]
        token = None
        with pytest.raises(RuntimeError), transaction.atomic():
            token = rls.enter(tenant_a.tenant.pk)
            assert [d.title for d in Document.objects.all()] == ["secret-of-a"]
            raise RuntimeError("a real ROLLBACK undoes the setting made inside")
        assert [d.title for d in Document.objects.all()] == ["secret-of-a"]
        rls.leave(token)
        assert [d.title for d in Document.objects.all()] == ["own-of-b"]
        connection.close()  # a new connection starts from nothing and is scoped again
        assert [d.title for d in Document.objects.all()] == ["own-of-b"]
    assert Document.objects.count() == 2


def test_the_event_stream_runs_in_the_tenants_scope(two_tenants, monkeypatch):
    from asgiref.sync import async_to_sync, sync_to_async

    from conversations import api, chat

    tenant_a, _tenant_b = two_tenants

    async def answer(turn):
        yield {"type": "token", "delta": await sync_to_async(_database_tenant_setting)()}

    monkeypatch.setattr(chat, "turn_answer", answer)
    turn = SimpleNamespace(
        tenant=tenant_a.tenant, user_message=SimpleNamespace(author_id=tenant_a.end_user.pk)
    )

    async def stream():
        return [event async for event in api._event_stream(turn)]

    (event,) = async_to_sync(stream)()
    assert f'"delta": "{tenant_a.tenant.pk}"' in event
    assert _database_tenant_setting() in ("", None)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_websocket_shows_nothing_of_another_tenant_even_without_its_filter(
    live_asgi, two_tenants, forgotten_filter
):

    tenant_a, tenant_b = two_tenants
    theirs = Conversation.objects.get(tenant=tenant_a.tenant)
    url = socket_url(live_asgi, tenant_b, "tenant_admin")

    async def subscribe():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "subscribe", "conversation_id": str(theirs.pk)}))
            return await receive(socket)

    answer = asyncio.run(subscribe())
    assert answer["type"] == "error" and answer["error"]["code"] == "not_found", answer


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_threads_run_each_call_in_its_callers_scope(two_tenants, monkeypatch):
    """The sockets' blocking work runs in a pool of threads (tenants/blocking.py), whose
    connections serve one tenant's call, then another's: each call carries its caller's scope."""
    from concurrent.futures import ThreadPoolExecutor

    from tenants import blocking

    tenant_a, tenant_b = two_tenants
    # One thread, so one connection that serves A's calls and B's in turn.
    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(blocking, "_executor", pool)

    def titles():
        return sorted(document.title for document in Document.objects.all())  # no tenant filter

    async def ask(tenant_id):
        if tenant_id is None:
            return await blocking.to_pool(titles)()
        with rls.scope(tenant_id):
            return await blocking.to_pool(titles)()

    async def calls():
        tenants = [tenant_a.tenant.pk, tenant_b.tenant.pk, None] * 3
        return await asyncio.gather(*(ask(tenant_id) for tenant_id in tenants))

    try:
        seen = asyncio.run(calls())
    finally:
        pool.shutdown()
    assert seen == [["secret-of-a"], ["own-of-b"], ["own-of-b", "secret-of-a"]] * 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_pooled_connection_takes_each_borrowers_scope_not_the_last_ones(two_tenants):
    """Web processes take their connections from a pool (settings.py, DATABASE_POOL_MAX_SIZE). A
    connection goes back with its last tenant's scope still set on the session; whoever borrows
    it next applies its own before the first query, even a thread whose last borrowing had that
    same scope (here two threads' wrappers share one pooled connection: A's, B's, A's again)."""
    from contextlib import nullcontext

    from tenants.postgresql.base import DatabaseWrapper

    tenant_a, tenant_b = two_tenants
    pooled_settings = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1}},
    }
    first, second = (DatabaseWrapper(pooled_settings, alias="pooled") for _ in range(2))

    def borrow(wrapper, tenant_id):
        """One request's use: a connection borrowed, a query with no tenant filter, given back."""
        with rls.scope(tenant_id) if tenant_id else nullcontext():
            with wrapper.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_backend_pid(), array_agg(title ORDER BY title) FROM knowledge_document"
                )
                row = cursor.fetchone()
        wrapper.close()
        return row

    try:
        seen = [
            borrow(first, tenant_a.tenant.pk),
            borrow(second, tenant_b.tenant.pk),
            borrow(first, tenant_a.tenant.pk),
            borrow(second, None),
        ]
    finally:
        first.close_pool()
    assert len({backend for backend, _titles in seen}) == 1  # one connection served them all
    assert [titles for _backend, titles in seen] == [
        ["secret-of-a"],
        ["own-of-b"],
        ["secret-of-a"],
        ["own-of-b", "secret-of-a"],
    ]
