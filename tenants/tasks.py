"""Celery tasks of the tenants: load by id, call a service, retry what is transient."""

import logging

from celery import shared_task
from django.db import DatabaseError

from tenants import services
from tenants.errors import ServiceUnavailable

logger = logging.getLogger(__name__)


@shared_task(name=services.PURGE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def purge_tenant_data(self, tenant_id: str, name: str = "") -> dict:
    """Remove a deleted tenant's vectors, keyword statistics and files (queued on commit by
    `tenant_delete`). Idempotent, so a redelivery or a retry is safe; a service that is down
    (the vector index) is waited out with backoff."""
    try:
        return services.tenant_data_purge(tenant_id=tenant_id, name=name)
    except (ServiceUnavailable, DatabaseError) as error:
        countdown = min(2 ** (self.request.retries + 1), 300)
        logger.warning("purge of deleted tenant %s will retry in %ss: %s", tenant_id, countdown, error)
        raise self.retry(exc=error, countdown=countdown) from error
