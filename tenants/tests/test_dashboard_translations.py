"""The Traditional Chinese catalog is complete and compiled: no untranslated or fuzzy entry, and
the committed .mo holds every message of the .po."""

import gettext
import re

from django.conf import settings

CATALOG = settings.BASE_DIR / "locale" / "zh_Hant" / "LC_MESSAGES"


def po_entries() -> list[tuple[str, list[str]]]:
    text = (CATALOG / "django.po").read_text(encoding="utf-8")
    entries = []
    for block in text.split("\n\n")[1:]:
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        body = "\n".join(lines)
        msgid = "".join(re.findall(r'"(.*)"', re.search(r'msgid ((?:".*"\n?)+)', body).group(1)))
        translations = re.findall(r'msgstr(?:\[\d\])? ((?:".*"\n?)+)', body)
        entries.append((msgid, ["".join(re.findall(r'"(.*)"', part)) for part in translations]))
    return entries


def test_every_message_is_translated():
    text = (CATALOG / "django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in text
    untranslated = [msgid for msgid, translations in po_entries() if not all(translations)]
    assert untranslated == []


def test_the_compiled_catalog_matches_the_po():
    with open(CATALOG / "django.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    assert catalog.gettext("Documents") == "文件"
    compiled_ids = {key if isinstance(key, str) else key[0] for key in catalog._catalog if key}
    po_ids = {msgid.encode().decode("unicode_escape").encode("latin-1").decode() for msgid, _ in po_entries()}
    assert po_ids == compiled_ids
