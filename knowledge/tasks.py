"""Celery tasks of the knowledge base: load by id, call the ingestion pipeline, retry what is
transient. The pipeline queues them by name (ingestion.INGEST_TASK); knowledge/apps.py imports
this module so that every process knows them."""

import contextlib
import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from django.db import DatabaseError

from knowledge import ingestion
from knowledge.embedding import EmbeddingUnavailable
from knowledge.vector_index import VectorIndexUnavailable
from knowledge.warmup import warm_up
from tenants import rls

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_worker_process(**_kwargs) -> None:
    # After the fork: the embedding engine must be loaded in the child, never before it.
    warm_up()


@worker_ready.connect
def _sweep_on_start(**_kwargs) -> None:
    # Whatever a crash or a lost message left waiting is dispatched again by the next worker.
    dispatch_waiting_documents.delay()


TRANSIENT = ingestion.TRANSIENT
# What a document waiting for a retry says it waits for.
_WAITING_FOR = ((VectorIndexUnavailable, "The vector index"), (EmbeddingUnavailable, "The embedding service"))
MAX_RETRIES = 6
_OPTIONS = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": MAX_RETRIES,
    "soft_time_limit": 30 * 60,
    "time_limit": 31 * 60,
}


@shared_task(name=ingestion.INGEST_TASK, **_OPTIONS)
def ingest_documents(self, tenant_id: str, document_ids: list[int]) -> dict[str, str]:
    """Ingest a batch of the tenant's documents (the task's id is the batch's). Acknowledged
    only when done, and redelivered if the worker dies, which is safe because the documents
    the batch finished are skipped and the others are replaced rather than appended."""
    return _run(self, tenant_id, list(document_ids), batch=self.request.id)


@shared_task(name=ingestion.INGEST_ONE_TASK, **_OPTIONS)
def ingest_document(self, tenant_id: str, document_id: int) -> str:
    """Ingest one document: the messages queued before ingestion took batches."""
    return _run(self, tenant_id, [document_id], batch=None)[str(document_id)]


def _run(self, tenant_id: str, document_ids: list[int], *, batch: str | None) -> dict[str, str]:
    with rls.scope(tenant_id):
        outcome = _ingest(self, tenant_id, document_ids, batch=batch)
        # The documents are done (ready, failed, deleted or handed back): the tenant's next
        # ones take their place.
        try:
            ingestion.ingestion_dispatch(tenant_id=tenant_id)
        except Exception:  # noqa: BLE001 - the next upload, ingestion or worker start dispatches
            logger.exception("could not dispatch the next documents of tenant %s", tenant_id)
        return outcome


@shared_task(acks_late=True, reject_on_worker_lost=True)
def dispatch_waiting_documents() -> int:
    """Queue the waiting documents of every tenant, within each tenant's cap (also fit for a
    periodic schedule)."""
    return ingestion.ingestion_sweep()


def _ingest(self, tenant_id: str, document_ids: list[int], *, batch: str | None) -> dict[str, str]:
    try:
        outcomes = ingestion.documents_ingest(tenant_id=tenant_id, document_ids=document_ids, batch=batch)
    except TRANSIENT as error:
        if self.request.retries >= self.max_retries:
            ingestion.documents_fail_unfinished(
                tenant_id=tenant_id,
                document_ids=document_ids,
                batch=batch,
                message="A service the ingestion needs stayed unavailable; reindex the document to try again.",
            )
            return dict.fromkeys(map(str, document_ids), "failed")
        countdown = min(2 ** (self.request.retries + 1), 300)
        logger.warning("ingestion of documents %s will retry in %ss: %s", document_ids, countdown, error)
        service = next((name for kind, name in _WAITING_FOR if isinstance(error, kind)), "The database")
        with contextlib.suppress(DatabaseError):  # the database may be what is down
            ingestion.document_note_retry(
                tenant_id=tenant_id,
                document_ids=document_ids,
                message=f"{service} is unavailable; retrying in {countdown} s "
                f"(attempt {self.request.retries + 2} of {self.max_retries + 1}).",
            )
        raise self.retry(exc=error, countdown=countdown) from error
    except Exception as error:
        # An unexpected bug (or the time limit) must not leave documents `processing` forever.
        logger.exception("ingestion of documents %s failed", document_ids)
        ingestion.documents_fail_unfinished(
            tenant_id=tenant_id,
            document_ids=document_ids,
            batch=batch,
            message=f"Ingestion failed unexpectedly ({type(error).__name__}).",
        )
        return dict.fromkeys(map(str, document_ids), "failed")
    return {str(document_id): outcome for document_id, outcome in outcomes.items()}
