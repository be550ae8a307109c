"""Celery tasks of web sources: load by id, call a service."""

import logging

from celery import shared_task
from django.conf import settings

from sources import services
from tenants import rls

logger = logging.getLogger(__name__)


@shared_task(
    name=services.CRAWL_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.WEB_CRAWL_MAX_RUN_SECONDS + 120,
    time_limit=settings.WEB_CRAWL_MAX_RUN_SECONDS + 180,
)
def crawl_source(tenant_id: str, run_id: int) -> str:
    """Crawl one source (one queued run). A redelivered run starts over: pages already synced
    cost a fetch and nothing more."""
    with rls.scope(tenant_id):
        run = services.crawl_run_execute(tenant_id=tenant_id, run_id=run_id)
    return run.status if run else "deleted"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sync_due_sources() -> int:
    """Celery beat runs this hourly: queue the sources whose daily or weekly sync is due."""
    queued = services.web_sources_sync_due()
    logger.info("web sources due: %s queued", queued)
    return queued
