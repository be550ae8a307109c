"""The platform's Celery app with a timer around each step of the ingestion, for
bench/ingestion_throughput.py's many-small-documents run: `celery -A _timed_worker worker` (with
this folder on PYTHONPATH) is the platform's worker, whose pool processes also write, after each
ingestion task, one JSON line of what each step of it took to the file named by
BENCH_TIMINGS_FILE (with the documents of the task's batch). Nothing of the platform is changed: the timers wrap module attributes in the
pool process only (about a microsecond per call).
"""

import json
import os
import time

from celery.signals import task_postrun, task_prerun, worker_process_init

from platform_project.celery import app  # noqa: F401 - the app `celery -A` finds here

_state: dict = {}


@worker_process_init.connect
def _instrument(**_kwargs) -> None:
    from ingestion_throughput import Timers, instrument

    from knowledge.embedding import get_embedder

    timers = Timers()
    instrument(timers, get_embedder())
    _state["timers"] = timers


def _is_ingestion(task) -> bool:
    from knowledge.ingestion import INGEST_ONE_TASK, INGEST_TASK

    return task.name in (INGEST_TASK, INGEST_ONE_TASK)


@task_prerun.connect
def _task_started(task_id=None, task=None, **_kwargs) -> None:
    timers = _state.get("timers")
    if timers is None or not _is_ingestion(task):
        return
    _state["started"] = time.perf_counter()
    _state["before"] = (dict(timers.seconds), dict(timers.calls))


@task_postrun.connect
def _task_ended(task_id=None, task=None, args=None, **_kwargs) -> None:
    timers = _state.get("timers")
    if timers is None or "started" not in _state or not _is_ingestion(task):
        return
    seconds, calls = _state.pop("before")
    line = {
        # `ingest_documents` carries a batch; `ingest_document`, the old name, one document.
        "document_ids": (args[1] if isinstance(args[1], list) else [args[1]])
        if args and len(args) > 1
        else [],
        "task": time.perf_counter() - _state.pop("started"),
        "seconds": {label: value - seconds.get(label, 0.0) for label, value in timers.seconds.items()},
        "calls": {label: value - calls.get(label, 0) for label, value in timers.calls.items()},
    }
    path = os.environ.get("BENCH_TIMINGS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(line) + "\n")
