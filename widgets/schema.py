"""The visitor token in the OpenAPI schema: a security scheme of its own (`visitorToken`), so
that /v1/widget/… says which credential it takes and a client (or the API fuzzing) tells it
from a member's JWT. Registered when the app is ready (drf-spectacular finds extensions by
subclassing)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class VisitorTokenScheme(OpenApiAuthenticationExtension):
    target_class = "widgets.tokens.VisitorTokenAuthentication"
    name = "visitorToken"

    def get_security_definition(self, auto_schema):
        return {
            **build_bearer_security_scheme_object(
                header_name="AUTHORIZATION",
                token_prefix="Bearer",  # noqa: S106 - the scheme's name, not a secret
                bearer_format="JWT",
            ),
            "description": (
                "A website visitor's token, from `POST /v1/widget/sessions`; it opens only "
                "/v1/widget/…, and a member's token opens nothing there."
            ),
        }
