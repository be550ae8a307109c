"""What a provider is built from: its kind and the settings of one entry of a tenant's chain.

Apart from the factory in `llm.providers`, so that the providers can import it without
importing the package that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("offline", "openai", "azure_openai", "anthropic", "openai_compatible")
KIND_LABELS = {
    "offline": "Offline (quotes the knowledge base, no model)",
    "openai": "OpenAI",
    "azure_openai": "Azure OpenAI",
    "anthropic": "Anthropic",
    "openai_compatible": "OpenAI-compatible server (vLLM, Ollama, LiteLLM…)",
}
# Kinds that cannot work without a base URL, and kinds that cannot work without an API key.
NEEDS_BASE_URL = frozenset({"azure_openai", "openai_compatible"})
NEEDS_API_KEY = frozenset({"openai", "azure_openai", "anthropic"})


@dataclass(frozen=True)
class ProviderSpec:
    kind: str
    model: str = ""
    # OpenAI / Anthropic: an optional other endpoint; Azure: the resource endpoint
    # (https://NAME.openai.azure.com); OpenAI-compatible: the server's base URL (…/v1).
    base_url: str = ""
    # Plain text, decrypted just before use; kept out of repr() so it never reaches a log.
    api_key: str = field(default="", repr=False)
    api_version: str = ""  # Azure only
    # When set, these override the request's values.
    temperature: float | None = None
    max_tokens: int | None = None
    # Per attempt: connect, and each read (so also the longest silence inside a stream).
    timeout_seconds: float = 30.0
    # The client library's own retries on timeouts, connection errors, 408, 409, 429 and 5xx,
    # with exponential backoff (0.5 s doubling, honouring Retry-After). They happen only before
    # the first delta: once a stream has started, an error ends it.
    max_retries: int = 2
