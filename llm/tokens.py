"""A dependency-free token estimate.

It is an estimate, not any model's tokenizer: providers that report usage are believed instead.
It serves where no usage is reported (the offline provider, a stream cut before its usage) and
to budget the conversation history in prompts. The rules approximate common BPE tokenizers:
each CJK character counts 1, a run of other letters and digits counts one per 4 characters
(rounded up, at least 1 per word), and each punctuation mark counts 1.
"""

import re

# Han (with extensions and compatibility ideographs), kana, hangul and CJK symbols.
CJK_CHARACTERS = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u30ff\u3100-\u312f\u3190-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff"
)
_PIECES = re.compile(rf"(?P<cjk>[{CJK_CHARACTERS}])|(?P<word>[^\W{CJK_CHARACTERS}]+)|(?P<mark>[^\w\s])")


def estimate_tokens(text: str) -> int:
    """An estimate of how many tokens `text` takes (see the module docstring)."""
    total = 0
    for match in _PIECES.finditer(text or ""):
        word = match.group("word")
        total += -(-len(word) // 4) if word else 1
    return total
