"""What PostgreSQL row-level security costs: the same queries with the tenant policies on and off.

    .venv/bin/python bench/rls_overhead.py                 # 20 tenants x (2,000 documents, 20,000 messages)
    .venv/bin/python bench/rls_overhead.py --documents 200 --messages 2000 --iterations 100 --requests 40

Needs PostgreSQL: the server of `DATABASE_URL` when it is a postgres URL, else
postgres://platform@127.0.0.1:5432. Whatever the URL names, the benchmark works in its own
database, `bench_rls` (`--database`), which it drops and creates at the start and drops at the end:
it never touches the platform's database nor the test suite's (`test*`). The role must be an
ordinary one (not superuser, no BYPASSRLS: policies would not bind it) with CREATEDB. When the
server cannot be reached, the script says so and hands run_all.py a result marked skipped.

Data: `migrate` (which applies the policies, tenants/rls.py), then 20 tenants from
`tenant_create`, each with an agent, documents, conversations of 100 messages each, all
bulk-created; created_at spread out so that the lists sort on distinct values; ANALYZE.

Measured in-process on one connection (the platform's `tenants.postgresql` backend), DEBUG off,
each iteration against a random tenant, policies on and off alternating in rounds (turning them
off is `ALTER TABLE … NO FORCE ROW LEVEL SECURITY` and `DISABLE ROW LEVEL SECURITY` on every
tenant-owned table, as their owner; on again through `rls.apply_policies`), warm-up after every
switch:

1. Scoped queries inside `rls.scope(tenant)`, the scope already applied to the connection: the
   documents list (`for_tenant(t).order_by('-created_at')[:25]`), the documents count, the
   messages of one conversation, and the page of documents the API lists (`document_list`, its
   uploader joined, 20). Floor: the same query, same scope, policies off.
2. Applying the scope: `rls.scope` entry + the list query when the connection carries another
   scope (the backend sends one `set_config` round trip first) against the same when it carries
   this one already; policies on. Both follow a run of the same query (one with the tenant alone,
   then with the tenant and its agent, as a request scopes), so both find the same warm pages.
   And the bare `set_config` statement through psycopg.
3. One API request, `GET /v1/tenants/{id}/documents` with an agent's JWT through Django's test
   `Client` (the whole stack: token, tenant resolution, scope, the page of documents), policies
   on against off. Persistent connection (CONN_MAX_AGE), as a busy web process keeps it.
"""

import argparse
import functools
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from _environment import ROOT, Results, add_results_argument, machine, percentile, skip, versions

DEFAULT_URL = "postgres://platform@127.0.0.1:5432/bench_rls"
MESSAGES_PER_CONVERSATION = 100
BATCH = 5000


# --- The database ------------------------------------------------------------------------------


def server_url(database: str) -> tuple[str, dict]:
    """The URL the benchmark uses (`DATABASE_URL`'s server if it is PostgreSQL, its own database
    name in any case) and psycopg's connection arguments for the server's `postgres` database."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        url = DEFAULT_URL
    parts = urlsplit(url)
    own = parts._replace(path=f"/{database}").geturl()
    maintenance = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or "") or None,
        "dbname": "postgres",
        "connect_timeout": 5,
        "autocommit": True,
    }
    return own, maintenance


def recreate_database(maintenance: dict, database: str) -> str:
    """Drop and create `database`; answer why the benchmark cannot run, or "" when it can."""
    import psycopg
    from psycopg import sql

    try:
        connection = psycopg.connect(**maintenance)
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())  # one line: it goes into a table row
        return f"PostgreSQL unreachable at {maintenance['host']}:{maintenance['port']}: {reason}"
    with connection:
        role, superuser, bypass, createdb = connection.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if superuser or bypass:
            raise SystemExit(
                f"The role {role!r} is a superuser or has BYPASSRLS: row-level security does not apply "
                "to it, so there is nothing to measure. Connect as an ordinary role (DATABASE_URL)."
            )
        if not createdb:
            raise SystemExit(f"The role {role!r} lacks CREATEDB: it cannot create the database {database!r}.")
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return ""


def drop_database(maintenance: dict, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(**maintenance) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def set_policies(enabled: bool) -> None:
    """Row-level security on (enabled, forced, policies recreated) or off on every tenant-owned
    table. Off is the floor: with no scope the policies still evaluate their `IS NULL OR`."""
    from django.db import connection

    from tenants import rls

    if enabled:
        rls.apply_policies()
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, _tenant, _user in rls.tenant_owned_fields(connection):
            cursor.execute(f"ALTER TABLE {quote(table)} NO FORCE ROW LEVEL SECURITY")
            cursor.execute(f"ALTER TABLE {quote(table)} DISABLE ROW LEVEL SECURITY")


def policies_state() -> tuple[int, int]:
    """(tables with row-level security enabled, of them forced), to check a switch took."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE relrowsecurity), count(*) FILTER (WHERE relforcerowsecurity) "
            "FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
        )
        return cursor.fetchone()


# --- Data --------------------------------------------------------------------------------------


def build_data(*, tenants: int, documents: int, messages: int) -> list[dict]:
    """Tenants with an agent each, documents and conversations bulk-created; returns per tenant
    its object, a conversation id and the agent's access token."""
    from django.db import connection

    from accounts.models import User
    from accounts.services import token_pair_for
    from conversations.models import Conversation, Message
    from knowledge.models import Document
    from tenants.models import Plan
    from tenants.services import membership_create, tenant_create

    plan, _ = Plan.objects.get_or_create(code="bench", defaults={"name": "Bench (no limits)"})
    built = []
    for number in range(tenants):
        tenant = tenant_create(name=f"RLS bench {number}", plan=plan)
        agent = User.objects.create_user(f"agent{number}@rls-bench.example", None)
        membership = membership_create(tenant=tenant, user=agent, role="agent")
        Document.objects.bulk_create(
            (
                Document(
                    tenant=tenant,
                    title=f"Policy {index} of tenant {number}",
                    filename=f"policy-{index}.txt",
                    kind="txt",
                    content_type="text/plain",
                    size_bytes=1000 + index,
                    sha256=f"{number:08x}{index:056x}",
                    file_path=f"bench/{number}/{index}.txt",
                    status=Document.Status.READY,
                    stage=Document.Stage.DONE,
                    chunk_count=3,
                    uploaded_by=agent,
                )
                for index in range(documents)
            ),
            batch_size=BATCH,
        )
        conversations = Conversation.objects.bulk_create(
            Conversation(tenant=tenant, user=agent, title=f"Question {index}")
            for index in range(max(1, messages // MESSAGES_PER_CONVERSATION))
        )
        Message.objects.bulk_create(
            (
                Message(
                    tenant=tenant,
                    conversation=conversations[index // MESSAGES_PER_CONVERSATION % len(conversations)],
                    role=Message.Role.USER if index % 2 == 0 else Message.Role.ASSISTANT,
                    content=f"Message {index}: how long is the warranty of laptop model {index % 97}? "
                    "保固兩年，電池一年；退貨請於到貨後七天內申請。",
                )
                for index in range(messages)
            ),
            batch_size=BATCH,
        )
        built.append(
            {
                "tenant": tenant,
                "conversation": conversations[len(conversations) // 2].pk,
                "token": token_pair_for(user=agent, membership=membership)[0],
                "user": agent.pk,
            }
        )
    with connection.cursor() as cursor:
        # bulk_create gives every row the same auto_now_add time: spread them so lists sort on
        # distinct values, as real ones do.
        cursor.execute("UPDATE knowledge_document SET created_at = now() - id * interval '1 second'")
        cursor.execute("UPDATE conversations_message SET created_at = now() - id * interval '1 second'")
        cursor.execute("VACUUM ANALYZE")
    return built


# --- Measuring ---------------------------------------------------------------------------------


def queries() -> dict:
    from conversations.models import Message
    from knowledge import selectors
    from knowledge.models import Document

    return {
        "documents list (25 newest)": lambda t: list(
            Document.objects.for_tenant(t["tenant"]).order_by("-created_at")[:25]
        ),
        "documents page as the API lists it (selector, uploader joined, 20)": lambda t: list(
            selectors.document_list(tenant=t["tenant"])[:20]
        ),
        "documents count": lambda t: Document.objects.for_tenant(t["tenant"]).count(),
        f"messages of a conversation ({MESSAGES_PER_CONVERSATION})": lambda t: list(
            Message.objects.for_tenant(t["tenant"])
            .filter(conversation_id=t["conversation"])
            .order_by("created_at")
        ),
    }


def apply_scope_now() -> None:
    """Let the backend send the context's scope now, so that the timed query does not pay it."""
    from django.db import connection

    with connection.cursor():
        pass


def time_scoped(query, tenant: dict) -> float:
    """ms of `query` inside the tenant's scope, the scope already applied to the connection."""
    from tenants import rls

    with rls.scope(tenant["tenant"].pk):
        apply_scope_now()
        started = time.perf_counter()
        query(tenant)
        return (time.perf_counter() - started) * 1000


def time_scope_entry(query, tenant: dict, user_id=None) -> float:
    """ms of entering the scope and running `query` (a `set_config` first when the connection
    carries another scope)."""
    from tenants import rls

    started = time.perf_counter()
    with rls.scope(tenant["tenant"].pk, user_id):
        query(tenant)
    return (time.perf_counter() - started) * 1000


def time_set_config(tenant: dict) -> float:
    """ms of the backend's `set_config` statement alone, on the raw psycopg connection."""
    from django.db import connection

    from tenants import rls

    connection.ensure_connection()
    started = time.perf_counter()
    connection.connection.execute(
        "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
        [rls.TENANT_SETTING, str(tenant["tenant"].pk), rls.USER_SETTING, str(tenant["user"])],
    )
    elapsed = (time.perf_counter() - started) * 1000
    connection.applied_scope = None  # the backend's scope no longer says what the connection holds
    return elapsed


def time_request(client, tenant: dict) -> float:
    started = time.perf_counter()
    response = client.get(
        f"/v1/tenants/{tenant['tenant'].pk}/documents", HTTP_AUTHORIZATION=f"Bearer {tenant['token']}"
    )
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET documents answered {response.status_code}: {response.content[:300]!r}")
    return elapsed


def in_rounds(measures: dict, *, iterations: int, rounds: int, warmup: int, tenants: list, seed: int) -> dict:
    """Samples of every measure with policies on and off: `rounds` rounds, the order of on and
    off alternating, each state re-applied then warmed up; a random tenant per iteration."""
    chooser = random.Random(seed)
    samples = {(name, state): [] for name in measures for state in ("on", "off")}
    per_round = max(1, iterations // rounds)
    for number in range(rounds):
        for state in ("on", "off") if number % 2 == 0 else ("off", "on"):
            set_policies(state == "on")
            for name, measure in measures.items():
                for _ in range(warmup):
                    measure(chooser.choice(tenants))
                for _ in range(per_round):
                    samples[(name, state)].append(measure(chooser.choice(tenants)))
    set_policies(True)
    return samples


def scope_change_samples(query, *, iterations: int, warmup: int, tenants: list, seed: int) -> dict:
    """Interleaved, a random tenant each time: the query in the tenant's scope (untimed), then
    timed in the scope of the tenant and its agent (a change: `set_config`), then in it again (no
    change); and the bare `set_config`."""
    chooser = random.Random(seed)
    samples = {"change": [], "same": [], "set_config": []}
    for number in range(warmup + iterations):
        tenant = chooser.choice(tenants)
        time_scope_entry(query, tenant)
        timed = {
            "change": time_scope_entry(query, tenant, tenant["user"]),
            "same": time_scope_entry(query, tenant, tenant["user"]),
            "set_config": time_set_config(tenant),
        }
        if number >= warmup:
            for key, value in timed.items():
                samples[key].append(value)
    return samples


def explain(query_name: str, tenant: dict) -> str:
    from conversations.models import Message
    from knowledge import selectors
    from knowledge.models import Document
    from tenants import rls

    querysets = {
        "documents list": Document.objects.for_tenant(tenant["tenant"]).order_by("-created_at")[:25],
        "documents page (API)": selectors.document_list(tenant=tenant["tenant"])[:20],
        "documents count": Document.objects.for_tenant(tenant["tenant"]).order_by(),
        "messages": Message.objects.for_tenant(tenant["tenant"])
        .filter(conversation_id=tenant["conversation"])
        .order_by("created_at"),
    }
    with rls.scope(tenant["tenant"].pk):
        if query_name == "documents count":
            from django.db import connection

            sql, params = querysets[query_name].query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (COSTS OFF) SELECT count(*) FROM ({sql}) AS counted", params)  # noqa: S608
                return "\n".join(row[0] for row in cursor.fetchall())
        return querysets[query_name].explain(costs=False)


def stats(values: list[float]) -> dict:
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "mean": statistics.fmean(values)}


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--documents", type=int, default=2000, help="per tenant")
    parser.add_argument(
        "--messages", type=int, default=20000, help=f"per tenant, {MESSAGES_PER_CONVERSATION} a conversation"
    )
    parser.add_argument("--iterations", type=int, default=500, help="timed runs of each query in each state")
    parser.add_argument("--requests", type=int, default=200, help="timed API requests in each state")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of policies on and off")
    parser.add_argument("--database", default="bench_rls", help="the database created, used and dropped")
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    add_results_argument(parser)
    arguments = parser.parse_args()
    if arguments.database.startswith("test"):
        raise SystemExit("database names test* belong to the test suite: choose another --database")
    results = Results(arguments.results)

    url, maintenance = server_url(arguments.database)
    skipped = recreate_database(maintenance, arguments.database)
    if skipped:
        skip(results, skipped, "Start PostgreSQL (or set DATABASE_URL) and run it again.")
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-rls-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "platform_project.settings",
            "VAR_DIR": str(workdir),
            "DATABASE_URL": url,
            "DATABASE_CONN_MAX_AGE": "600",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from tenants import rls

    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        migrated = time.perf_counter() - started
        tenants = build_data(
            tenants=arguments.tenants, documents=arguments.documents, messages=arguments.messages
        )
        built = time.perf_counter() - started - migrated
        print(f"Machine: {machine()}")
        print(f"Versions: {versions('Django', 'psycopg')}, PostgreSQL {connection.pg_version // 10000}")
        print(
            f"Database {arguments.database}: migrate {migrated:.1f} s, data {built:.1f} s "
            f"({arguments.tenants} tenants x {arguments.documents:,} documents, {arguments.messages:,} messages)"
        )
        enabled, forced = policies_state()
        covered = len(rls.tenant_owned_fields(connection))
        if enabled < covered or forced < covered:
            raise SystemExit(f"policies not in force after migrate: {enabled}/{forced} of {covered} tables")
        warmup = max(3, arguments.iterations // arguments.rounds // 5)

        # 1. Scoped queries, policies on and off.
        measures = {name: functools.partial(time_scoped, query) for name, query in queries().items()}
        query_samples = in_rounds(
            measures,
            iterations=arguments.iterations,
            rounds=arguments.rounds,
            warmup=warmup,
            tenants=tenants,
            seed=1,
        )
        # 2. Applying the scope (policies on).
        list_name, list_query = next(iter(queries().items()))
        scope_samples = scope_change_samples(
            list_query, iterations=arguments.iterations, warmup=warmup, tenants=tenants, seed=2
        )
        # 3. API request, policies on and off.
        client = Client(raise_request_exception=True)
        api_samples = in_rounds(
            {"GET documents": lambda t: time_request(client, t)},
            iterations=arguments.requests,
            rounds=arguments.rounds,
            warmup=warmup,
            tenants=tenants,
            seed=3,
        )
        if policies_state() != (enabled, forced):
            raise SystemExit("the policies were not restored after the measurement")

        with results.section():
            print(
                f"PostgreSQL {connection.pg_version // 10000} on {maintenance['host']}, one connection, in-process, "
                f"DEBUG off; {arguments.tenants} tenants of {arguments.documents:,} documents and "
                f"{arguments.messages:,} messages; a random tenant per iteration; policies on and off "
                f"alternating over {arguments.rounds} rounds.\n"
            )
            print("### Scoped queries, policies on vs off\n")
            print(
                f"{arguments.iterations} runs of each in each state, inside `rls.scope(tenant)` already applied.\n"
            )
            print("| query | on p50 ms | on p95 ms | off p50 ms | off p95 ms | p50 on / off | p95 on / off |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for name in measures:
                on, off = stats(query_samples[(name, "on")]), stats(query_samples[(name, "off")])
                print(
                    f"| {name} | {on['p50']:.3f} | {on['p95']:.3f} | {off['p50']:.3f} | {off['p95']:.3f} | "
                    f"{on['p50'] / off['p50']:.2f} | {on['p95'] / off['p95']:.2f} |"
                )
                results.figure(
                    f"{name}, policies on: p50", on["p50"], "ms", floor=off["p50"], floor_name="policies off"
                )
            print("\n### Applying the scope\n")
            change, same = stats(scope_samples["change"]), stats(scope_samples["same"])
            bare = stats(scope_samples["set_config"])
            paired = stats(
                [a - b for a, b in zip(scope_samples["change"], scope_samples["same"], strict=True)]
            )
            print(
                f"`rls.scope` entry + the {list_name}, policies on, {arguments.iterations} of each, interleaved: "
                "when the connection carries another scope (the backend sends `set_config` first) and when "
                "it carries this one already.\n"
            )
            print("| | p50 ms | p95 ms | mean ms |")
            print("| --- | --- | --- | --- |")
            for label, row in (
                ("scope change + query", change),
                ("same scope + query", same),
                ("difference, pair by pair", paired),
                ("bare `set_config` statement (psycopg)", bare),
            ):
                print(f"| {label} | {row['p50']:.3f} | {row['p95']:.3f} | {row['mean']:.3f} |")
            results.figure(
                f"{list_name} after a scope change: p50",
                change["p50"],
                "ms",
                floor=same["p50"],
                floor_name="scope unchanged",
            )
            print("\n### One API request, policies on vs off\n")
            on, off = (
                stats(api_samples[("GET documents", "on")]),
                stats(api_samples[("GET documents", "off")]),
            )
            print(
                f"`GET /v1/tenants/{{id}}/documents` with an agent's JWT through Django's test Client, "
                f"{arguments.requests} requests in each state, a random tenant each (so a `set_config` "
                "nearly every time).\n"
            )
            print("| policies | p50 ms | p95 ms | mean ms |")
            print("| --- | --- | --- | --- |")
            print(f"| on | {on['p50']:.2f} | {on['p95']:.2f} | {on['mean']:.2f} |")
            print(f"| off | {off['p50']:.2f} | {off['p95']:.2f} | {off['mean']:.2f} |")
            print(
                f"| on / off | {on['p50'] / off['p50']:.2f} | {on['p95'] / off['p95']:.2f} | {on['mean'] / off['mean']:.2f} |"
            )
            for key in ("p50", "p95"):
                name = f"GET documents (API), policies on: {key}"
                results.figure(name, on[key], "ms", floor=off[key], floor_name="policies off")

            print("\n### Query plans\n")
            print(
                "Policies on; the API's page also with them off (the policy's filter lowers the row estimate).\n"
            )
            print("```")
            for name in ("documents list", "documents page (API)", "documents count", "messages"):
                print(f"-- {name}\n{explain(name, tenants[0])}")
            set_policies(False)
            print(f"-- documents page (API), policies off\n{explain('documents page (API)', tenants[0])}")
            set_policies(True)
            print("```")
    finally:
        connection.close()
        if not arguments.keep_database:
            drop_database(maintenance, arguments.database)


if __name__ == "__main__":
    main()
