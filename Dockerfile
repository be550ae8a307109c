# Production image for the platform: the ASGI server (uvicorn, WEB_CONCURRENCY worker processes)
# for HTTP and WebSocket by default, behind the proxy of deploy/nginx/; the same image runs the
# Celery worker and the migrations (see docker-compose.yml).
FROM python:3.11-slim

# Production by default: DEBUG off, so start-up refuses a missing, short or default SECRET_KEY
# (also the JWT signing key) and tenants cannot point providers at private addresses. Pass a
# real SECRET_KEY (docker run -e SECRET_KEY=..., or docker-compose.yml).
ENV DEBUG=false \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var \
    MEDIA_ROOT=/app/var/media \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

RUN groupadd --system app \
    && useradd --system --gid app --create-home --home-dir /home/app app

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .

# collectstatic runs as production serves (DEBUG off: hashed names and the manifest) with a
# throwaway key that exists only for this step and is kept nowhere. Static files stay
# root-owned (read-only for the app); var/ (uploads under var/media) belongs to the app user.
RUN DEBUG=false SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media \
    && chown -R app:app /app/var

USER app

EXPOSE 8000

# platform_project/webserver.py: uvicorn with production's options (UVICORN_OPTIONS); it forks
# WEB_CONCURRENCY worker processes (default 1; more need REDIS_URL: docs/scaling.md).
CMD ["uvicorn", "--host", "0.0.0.0", "--port", "8000", "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--lifespan", "off", "--no-access-log", "--log-level", "warning", "--no-proxy-headers", "--timeout-keep-alive", "75", "platform_project.asgi:application"]
