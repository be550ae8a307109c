"""Celery tasks of the LINE channel: load by id, in the tenant's scope, call a service."""

import logging

from celery import shared_task

from line_channel import services
from line_channel.delivery import SEND_TASK, delivery_send
from line_channel.models import LineDelivery, LineEvent
from tenants import rls

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def process_events(tenant_id: str, event_ids: list[int]) -> list[str]:
    """Answer a webhook call's events in order. An event already handled (a task redelivered
    after a worker died) is not answered again."""
    outcomes = []
    with rls.scope(tenant_id):
        for event_id in event_ids:
            stored = (
                LineEvent.objects.filter(pk=event_id, tenant_id=tenant_id, status=LineEvent.Status.PENDING)
                .select_related("channel", "channel__tenant")
                .first()
            )
            if stored is None:
                outcomes.append("skipped")
                continue
            try:
                status = services.line_event_process(stored=stored)
            except Exception as error:  # noqa: BLE001 - one bad event must not stop the others
                logger.exception("LINE event %s failed", event_id)
                services.line_event_finish(stored=stored, status=LineEvent.Status.FAILED, error=str(error))
                outcomes.append(LineEvent.Status.FAILED)
                continue
            services.line_event_finish(stored=stored, status=status)
            outcomes.append(status)
    return outcomes


@shared_task(name=SEND_TASK, acks_late=True, reject_on_worker_lost=True)
def send_delivery(tenant_id: str, delivery_id: str) -> str:
    """Push one pending delivery (an agent's reply)."""
    with rls.scope(tenant_id):
        delivery = (
            LineDelivery.objects.filter(
                pk=delivery_id, tenant_id=tenant_id, status=LineDelivery.Status.PENDING
            )
            .select_related("channel", "line_user")
            .first()
        )
        if delivery is None:
            return "skipped"
        return delivery_send(delivery=delivery).status
