"""The default plans. The seed brief names plans in Chinese (專業版); those names and their
Simplified and English equivalents are aliases, so clients may send any of them."""

from django.db import migrations

MB = 1024 * 1024
GB = 1024 * MB

PLANS = [
    # code, name, aliases, documents, storage, upload, monthly tokens, requests/minute, default
    ("free", "Free", ["免費版", "免费版", "免費"], 20, 50 * MB, 10 * MB, 100_000, 30, True),
    ("standard", "Standard", ["標準版", "标准版", "基礎版", "基础版", "basic"], 200, 500 * MB, 20 * MB, 1_000_000, 60, False),
    ("pro", "Pro", ["專業版", "专业版", "professional"], 2_000, 5 * GB, 50 * MB, 10_000_000, 300, False),
    ("enterprise", "Enterprise", ["企業版", "企业版"], 0, 0, 100 * MB, 0, 0, False),
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for code, name, aliases, documents, storage, upload, tokens, rpm, default in PLANS:
        Plan.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "aliases": aliases,
                "max_documents": documents,
                "max_storage_bytes": storage,
                "max_upload_bytes": upload,
                "monthly_token_quota": tokens,
                "requests_per_minute": rpm,
                "is_default": default,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
