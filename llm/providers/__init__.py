"""The providers behind the one interface of `llm.base`, and the factory that builds them.

A tenant's chain is a list of `ProviderSpec`s (from its `ProviderConfig` rows, keys decrypted);
`build_provider()` turns one into a `Provider`. The client libraries (openai, anthropic) take about
two seconds to import, so they load on the first network provider built, not when Django starts.
"""

from __future__ import annotations

from llm.base import Provider
from llm.providers.spec import KIND_LABELS, KINDS, NEEDS_API_KEY, NEEDS_BASE_URL, ProviderSpec

__all__ = ["KINDS", "KIND_LABELS", "NEEDS_API_KEY", "NEEDS_BASE_URL", "ProviderSpec", "build_provider"]


def build_provider(spec: ProviderSpec) -> Provider:
    if spec.kind not in KINDS:
        raise ValueError(f"Unknown provider kind {spec.kind!r}; expected one of {', '.join(KINDS)}.")
    if spec.kind == "offline":
        from llm.providers.offline import OfflineProvider

        return OfflineProvider()
    if spec.kind == "anthropic":
        from llm.providers.anthropic_messages import AnthropicMessagesProvider

        return AnthropicMessagesProvider(spec)
    from llm.providers.openai_chat import OpenAIChatProvider

    return OpenAIChatProvider(spec)
