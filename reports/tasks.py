"""Celery tasks of the reports app: load by id, call a service."""

import logging

from celery import shared_task

from reports import services
from tenants import rls

logger = logging.getLogger(__name__)


@shared_task(
    name=services.WRITE_EXPORT_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60 * 60,
    time_limit=61 * 60,
)
def write_export(tenant_id: str, export_id: str) -> str:
    """Write one export's file. Redelivery is safe: a ready export is left alone, a running one
    is written again from the start."""
    with rls.scope(tenant_id):
        try:
            export = services.export_write(tenant_id=tenant_id, export_id=export_id)
        except Exception:  # noqa: BLE001 - recorded on the export as failed, nothing to retry
            return "failed"
    return export.status if export else "deleted"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def daily_maintenance() -> dict:
    """Celery beat runs this daily (DAILY_JOBS_HOUR): abandoned conversations, retention,
    expired exports."""
    summary = services.daily_maintenance()
    logger.info("daily maintenance: %s", summary)
    return summary
