"""Browser-facing protections: CORS only for the origins the operator lists, security headers."""


def test_cors_allows_only_the_configured_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com.tw"]

    allowed = client.options(
        "/v1/auth/login",
        HTTP_ORIGIN="https://shop.example.com.tw",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    refused = client.options(
        "/v1/auth/login", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )

    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.com.tw"
    assert "Access-Control-Allow-Origin" not in refused


def test_responses_carry_the_security_headers(client):
    response = client.get("/healthz")

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
