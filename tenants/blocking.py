"""Blocking work of the event loop's code (the chat sockets and the answers they stream) in a
bounded pool of threads, instead of Channels' one database thread.

Channels' `database_sync_to_async`, like asgiref's `sync_to_async` outside a request, runs every
call of the process in one thread (thread_sensitive). At 200 simultaneous questions, each
question's retrieval (query embedding, index searches, database reads) waited for the 199 before
it, one at a time, while a core stood idle. `to_pool(func)` runs calls in `ASYNC_WORKER_THREADS`
threads instead: one per core by default, two at least. More held the GIL away from the event
loop long enough that every first token waited for the last retrieval (bench/chat_streaming.py,
docs/benchmark-notes.md).

- Django's database connections are per thread: each pool thread has its own, closed or kept as
  `CONN_MAX_AGE` says before and after every call, as Channels does. A call never relies on a
  transaction opened by another call (each service opens and closes its own), so which thread
  runs it does not matter.
- The tenant scope (tenants/rls.py) is a context variable, and asgiref runs the call in a copy
  of the caller's context: the call sees its caller's scope, and `tenants.postgresql` applies it
  to the thread's connection before the first query, whichever tenant that connection served
  last.
- The pool is bounded, and so are the database connections it holds.

`run(func)` is for code shared with synchronous callers: the chat service runs under
`async_to_sync` in the REST and LINE channels, whose calling thread is the request's own (it
waits anyway, and holds a test's transaction). It uses the pool only in a context that asked for
it with `offload()` (the sockets' answer tasks), the caller's thread otherwise.
"""

import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar

from asgiref.sync import sync_to_async
from channels.db import DatabaseSyncToAsync
from django.conf import settings

_offloaded: ContextVar[bool] = ContextVar("blocking_offloaded", default=False)
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def pool_size() -> int:
    # Two at least: one slow call (an index that times out) never holds every socket's work.
    return settings.ASYNC_WORKER_THREADS or max(2, os.cpu_count() or 1)


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=pool_size(), thread_name_prefix="blocking")
    return _executor


def to_pool(func: Callable) -> Callable[..., Awaitable]:
    """`func` as a coroutine function run in the pool, with the caller's context (tenant scope)."""
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=_pool())


def offload() -> None:
    """From here on in this context (a task and the tasks it starts), `run()` uses the pool."""
    _offloaded.set(True)


def run(func: Callable) -> Callable[..., Awaitable]:
    """`func` as a coroutine function: in the pool after `offload()`, else in the thread
    `sync_to_async` chooses (the request's own under `async_to_sync`)."""
    return to_pool(func) if _offloaded.get() else sync_to_async(func)
