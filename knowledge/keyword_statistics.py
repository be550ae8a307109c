"""The per-tenant keyword statistics that BM25 needs beside the chunks' own terms (keywords.py):
how many of the tenant's chunks hold each term (TermFrequency), and how many chunks and terms
the tenant has in all (KeywordCorpus). Ingestion adds a document's chunks to them and removes
them again, in the same transaction as the chunk rows.
"""

from collections import Counter

from django.db import connection
from django.db.models import F

from knowledge.models import KeywordCorpus, TermFrequency


def _uuid_for_db(tenant_id) -> object:
    field = TermFrequency._meta.get_field("tenant").target_field
    return field.get_db_prep_value(tenant_id, connection)


def term_frequencies_adjust(*, tenant_id, counts: Counter, sign: int) -> None:
    """Add (sign=1) or remove (sign=-1) chunks' terms from the tenant's document frequencies.
    Term ids are sorted so that concurrent ingestions lock rows in the same order.

    On PostgreSQL one statement carries all of a document's terms (two arrays unnested): a row
    per statement was the largest cost of ingesting a small document after the model itself
    (about 140 ms for a DRCD article of five chunks; bench/ingestion_throughput.py)."""
    if not counts:
        return
    table = TermFrequency._meta.db_table
    tenant = _uuid_for_db(tenant_id)
    ordered = sorted(counts.items())
    terms = [term for term, _ in ordered]
    amounts = [count for _, count in ordered]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if sign > 0:
                cursor.execute(
                    f"INSERT INTO {table} (tenant_id, term_id, chunk_count) "  # noqa: S608 - table name from the model
                    "SELECT %s, term, amount FROM unnest(%s::bigint[], %s::integer[]) AS adding(term, amount) "
                    f"ORDER BY term ON CONFLICT (tenant_id, term_id) DO UPDATE "
                    f"SET chunk_count = {table}.chunk_count + excluded.chunk_count",
                    [tenant, terms, amounts],
                )
            else:
                # The rows to change are locked in term order before they are updated.
                cursor.execute(
                    f"WITH removing AS (SELECT term, amount FROM unnest(%s::bigint[], %s::integer[]) "  # noqa: S608
                    f"AS removing(term, amount)), locked AS (SELECT id, term_id FROM {table} "
                    "WHERE tenant_id = %s AND term_id IN (SELECT term FROM removing) "
                    f"ORDER BY term_id FOR UPDATE) UPDATE {table} SET chunk_count = {table}.chunk_count - "
                    f"removing.amount FROM locked JOIN removing ON removing.term = locked.term_id "
                    f"WHERE {table}.id = locked.id",
                    [terms, amounts, tenant],
                )
        elif sign > 0:
            cursor.executemany(
                f"INSERT INTO {table} (tenant_id, term_id, chunk_count) VALUES (%s, %s, %s) "  # noqa: S608 - table name from the model
                f"ON CONFLICT (tenant_id, term_id) DO UPDATE SET chunk_count = {table}.chunk_count + excluded.chunk_count",
                [(tenant, term, count) for term, count in ordered],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET chunk_count = chunk_count - %s WHERE tenant_id = %s AND term_id = %s",  # noqa: S608
                [(count, tenant, term) for term, count in ordered],
            )
    if sign < 0:
        TermFrequency.objects.filter(tenant_id=tenant_id, chunk_count__lte=0).delete()


def corpus_adjust(*, tenant_id, chunks: int, terms: int) -> None:
    KeywordCorpus.objects.get_or_create(tenant_id=tenant_id)
    KeywordCorpus.objects.filter(tenant_id=tenant_id).update(
        chunk_count=F("chunk_count") + chunks, term_total=F("term_total") + terms
    )


def average_chunk_length(*, tenant_id, adding_chunks: int, adding_terms: int) -> float:
    """The tenant's average chunk length in terms, counting chunks about to be added."""
    corpus = KeywordCorpus.objects.filter(tenant_id=tenant_id).first()
    chunk_total = (corpus.chunk_count if corpus else 0) + adding_chunks
    return ((corpus.term_total if corpus else 0) + adding_terms) / max(chunk_total, 1)


def keyword_statistics_delete(*, tenant_id) -> int:
    """Delete all of a tenant's keyword statistics; how many term rows there were."""
    terms, _ = TermFrequency.objects.filter(tenant_id=tenant_id).delete()
    KeywordCorpus.objects.filter(tenant_id=tenant_id).delete()
    return terms
