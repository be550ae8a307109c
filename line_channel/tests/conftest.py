"""Fixtures of the LINE channel tests: a fake LINE API on a local port and a channel per tenant
(events and signed webhook calls: testsupport/line.py)."""

import pytest

from line_channel import services
from line_channel.fake_server import FakeLine
from testsupport.line import SECRET_A, SECRET_B, TOKEN_A, TOKEN_B


@pytest.fixture
def fake_line(settings):
    fake = FakeLine(tokens={TOKEN_A, TOKEN_B}, profiles={"U-alice": "陳小美", "U-bob": "Bob"}).start()
    settings.LINE_API_BASE = fake.base_url
    settings.LINE_RETRY_DELAYS = [0.01, 0.02]
    yield fake
    fake.stop()


@pytest.fixture
def channel_a(tenant_a):
    return services.line_channel_create(
        tenant=tenant_a.tenant,
        name="A 官方帳號",
        channel_id="1650000001",
        channel_secret=SECRET_A,
        channel_access_token=TOKEN_A,
        greeting="歡迎加入！有任何問題都可以問我。",
    )


@pytest.fixture
def channel_b(tenant_b):
    return services.line_channel_create(
        tenant=tenant_b.tenant,
        name="B official",
        channel_id="1650000002",
        channel_secret=SECRET_B,
        channel_access_token=TOKEN_B,
    )
