"""What ships for production beside the image: the reverse proxy's configuration (deploy/nginx/)
and docker-compose.yml with `web` scalable behind it. Docker cannot run here, so the compose
file is parsed, and the proxy's configuration is checked by nginx itself (`nginx -t`) and run
by it in front of the live server."""

import asyncio
import http.client
import json
import re
import shutil
import socket
import subprocess
import time

import pytest
import yaml
from django.conf import settings
from websockets.asyncio.client import connect

from platform_project.webserver import PRODUCTION_SERVER, server_command
from testsupport.environment import ROOT, load_settings, require_service

NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def nginx_conf() -> str:
    return NGINX_CONF.read_text()


def production_command() -> list[str]:
    """What the image and compose run: the production server's command, found on the PATH,
    with its worker count left to WEB_CONCURRENCY."""
    command = server_command(PRODUCTION_SERVER, host="0.0.0.0", port=8000)  # noqa: S104
    _python, _m, server, *arguments = command
    workers = arguments.index("--workers")
    del arguments[workers : workers + 2]
    return [server, *arguments]


def test_nginx_accepts_the_proxy_configuration(tmp_path):
    nginx = shutil.which("nginx") or (shutil.which("nginx", path="/usr/sbin:/sbin"))
    if nginx is None:
        require_service(
            "nginx", "install Debian's nginx package (apt-get install -y nginx) to check deploy/nginx"
        )
    result = subprocess.run(  # noqa: S603 - the system's nginx, fixed arguments
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(NGINX_CONF)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_the_proxy_refuses_the_bodies_the_platform_refuses_and_in_its_format():
    conf = nginx_conf()
    megabytes = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))
    assert megabytes * 1024 * 1024 == settings.MAX_REQUEST_BODY_BYTES
    body = re.search(r"return 413 '(.*)';", conf).group(1)
    assert f'"max_bytes": {settings.MAX_REQUEST_BODY_BYTES}' in body
    assert '"code": "payload_too_large"' in body


def test_the_proxy_upgrades_websockets_streams_unbuffered_and_passes_the_client_and_request_id():
    conf = nginx_conf()
    # nginx: a location with a proxy_set_header of its own inherits none of the server's.
    assert not re.search(r"location [^{]*\{[^}]*proxy_set_header", conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    streams = re.search(r"location ~ (\S+) \{(.*?)\n        \}", conf, re.DOTALL)
    pattern = re.compile(streams.group(1))
    assert pattern.match("/v1/tenants/8b7a0c2e-0000-4000-8000-000000000000/chat/stream")
    assert pattern.match("/v1/widget/chat/stream")
    assert not pattern.match("/v1/tenants/8b7a0c2e-0000-4000-8000-000000000000/documents")
    assert "proxy_buffering off;" in streams.group(2)
    for header in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme", "X-Request-ID"):
        assert f"proxy_set_header {header}" in conf


def test_web_scales_behind_the_proxy():
    services = compose()["services"]
    web, proxy = services["web"], services["proxy"]
    # A fixed host port would make a second replica fail to start.
    assert "ports" not in web
    assert web["command"] == production_command()
    assert web["environment"]["TRUSTED_PROXY_COUNT"] == "1"
    assert web["environment"]["REDIS_URL"].startswith("redis://")
    assert "WEB_CONCURRENCY" in web["environment"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    assert any(port.endswith(":80") for port in proxy["ports"])
    # The proxy reaches the replicas by the service's name, on the port they serve.
    assert "http://web:8000" in nginx_conf()


def test_the_image_serves_with_the_production_command():
    text = (ROOT / "Dockerfile").read_text()
    command = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1)
    assert yaml.safe_load(command) == production_command()


@pytest.mark.parametrize("raw", ["0", "two"])
def test_a_web_concurrency_that_is_not_a_positive_count_is_refused(raw):
    result = load_settings(WEB_CONCURRENCY=raw, REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode != 0
    assert "WEB_CONCURRENCY" in result.stderr


def test_several_web_processes_without_redis_are_refused():
    """Each process's memory would hold its own channel layer and rate limits: an agent's reply
    would miss a customer on another process, and each limit would multiply by the count."""
    refused = load_settings(WEB_CONCURRENCY="2", REDIS_URL="")
    assert refused.returncode != 0
    assert "WEB_CONCURRENCY" in refused.stderr and "REDIS_URL" in refused.stderr
    single = load_settings(WEB_CONCURRENCY="1", REDIS_URL="")
    assert single.returncode == 0, single.stderr
    with_redis = load_settings(
        show="settings.CHANNEL_LAYERS['default']['BACKEND']",
        WEB_CONCURRENCY="4",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert with_redis.returncode == 0, with_redis.stderr
    assert with_redis.stdout.strip() == "channels_redis.core.RedisChannelLayer"


@pytest.fixture
def proxy(live_asgi, tmp_path):
    """deploy/nginx/nginx.conf run by the system's nginx in front of the live server: the same
    file with only the upstream (Docker's `web:8000`), the port and the pid file replaced."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None:
        require_service("nginx", "install Debian's nginx package (apt-get install -y nginx)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = nginx_conf()
    for old, new in (
        ("http://web:8000", live_asgi.http_url),
        ("listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;"),
        ("pid /tmp/nginx.pid;", f"pid {tmp_path / 'nginx.pid'};"),
    ):
        assert old in conf
        conf = conf.replace(old, new)
    (tmp_path / "nginx.conf").write_text(conf)
    process = subprocess.Popen(  # noqa: S603 - the system's nginx, fixed arguments
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def through(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_proxy_passes_or_makes_the_request_id_and_refuses_oversized_bodies(proxy):
    response, _ = through(proxy, "GET", "/healthz", {"X-Request-ID": "support-ticket-42"})
    assert response.status == 200
    assert response.getheader("X-Request-ID") == "support-ticket-42"
    response, _ = through(proxy, "GET", "/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response.getheader("X-Request-ID"))

    too_large = str(settings.MAX_REQUEST_BODY_BYTES + 1)
    response, body = through(proxy, "POST", "/v1/auth/login", {"Content-Length": too_large}, b"")
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_websockets_reach_the_platform_through_the_proxy(proxy):
    async def scenario():
        async with connect(f"ws://127.0.0.1:{proxy}/ws/widget/?token=not-a-token") as socket_:
            return json.loads(await asyncio.wait_for(socket_.recv(), 30))

    event = asyncio.run(scenario())
    # The consumer itself answered: the upgrade went through the proxy.
    assert event["error"]["code"] == "token_invalid"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_behind_the_proxy_a_forged_forwarded_for_does_not_escape_the_sign_in_limit(proxy, tenant_a, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # as docker-compose.yml sets it
    settings.LOGIN_FAILURE_LIMIT = 2
    statuses = []
    for number in range(3):
        headers = {"Content-Type": "application/json", "X-Forwarded-For": f"203.0.113.{number}"}
        body = json.dumps({"email": tenant_a.agent.email, "password": "wrong-password"}).encode()
        response, _ = through(proxy, "POST", "/v1/auth/login", headers, body)
        statuses.append(response.status)
    # The proxy appends the address it saw; the platform counts that one, not the forged ones.
    assert statuses == [401, 401, 429]
