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
from knowledge.models import Document
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


TRANSIENT = (VectorIndexUnavailable, EmbeddingUnavailable, DatabaseError)
# What a document waiting for a retry says it waits for.
_WAITING_FOR = ((VectorIndexUnavailable, "The vector index"), (EmbeddingUnavailable, "The embedding service"))
MAX_RETRIES = 6


@shared_task(
    name=ingestion.INGEST_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=30 * 60,
    time_limit=31 * 60,
)
def ingest_document(self, tenant_id: str, document_id: int) -> str:
    """Ingest one document. Acknowledged only when done, and redelivered if the worker dies,
    which is safe because ingestion replaces rather than appends."""
    with rls.scope(tenant_id):
        outcome = _ingest(self, tenant_id, document_id)
        # The document is done (ready, failed or deleted): the tenant's next one takes its place.
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


def _ingest(self, tenant_id: str, document_id: int) -> str:
    try:
        document = ingestion.document_ingest(tenant_id=tenant_id, document_id=document_id)
    except TRANSIENT as error:
        if self.request.retries >= self.max_retries:
            document = Document.objects.for_tenant_id(tenant_id).filter(pk=document_id).first()
            if document is not None:
                ingestion.document_fail(
                    document=document,
                    message="A service the ingestion needs stayed unavailable; reindex the document to try again.",
                )
            return "failed"
        countdown = min(2 ** (self.request.retries + 1), 300)
        logger.warning("ingestion of document %s will retry in %ss: %s", document_id, countdown, error)
        service = next((name for kind, name in _WAITING_FOR if isinstance(error, kind)), "The database")
        with contextlib.suppress(DatabaseError):  # the database may be what is down
            ingestion.document_note_retry(
                tenant_id=tenant_id,
                document_id=document_id,
                message=f"{service} is unavailable; retrying in {countdown} s "
                f"(attempt {self.request.retries + 2} of {self.max_retries + 1}).",
            )
        raise self.retry(exc=error, countdown=countdown) from error
    except Exception as error:
        # An unexpected bug must not leave the document `processing` forever.
        logger.exception("ingestion of document %s failed", document_id)
        document = Document.objects.for_tenant_id(tenant_id).filter(pk=document_id).first()
        if document is not None:
            ingestion.document_fail(
                document=document, message=f"Ingestion failed unexpectedly ({type(error).__name__})."
            )
        return "failed"
    return document.status if document else "deleted"
