"""The upload budget counts files and bytes per hour by plan, so that onboarding a knowledge base
of 400 files and 200 MB is one action on every plan above Free; Standard holds 500 documents
(it held 200, fewer than such a knowledge base)."""

from django.db import migrations, models

MB = 1024 * 1024
GB = 1024 * MB

# code: (files per hour, bytes per hour, documents held or None to leave it)
BUDGETS = {
    "free": (60, 50 * MB, None),
    "standard": (600, 500 * MB, 500),
    "pro": (2_000, 2 * GB, None),
    "enterprise": (10_000, 20 * GB, None),
}


def set_budgets(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for code, (files, size, documents) in BUDGETS.items():
        changes = {"upload_files_per_hour": files, "upload_bytes_per_hour": size}
        if documents is not None:
            changes["max_documents"] = documents
        Plan.objects.filter(code=code).update(**changes)


def restore_documents(apps, schema_editor):
    apps.get_model("tenants", "Plan").objects.filter(code="standard", max_documents=500).update(max_documents=200)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_audit_event")]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="upload_files_per_hour",
            field=models.PositiveIntegerField(default=120),
        ),
        migrations.AddField(
            model_name="plan",
            name="upload_bytes_per_hour",
            field=models.PositiveBigIntegerField(default=100 * MB),
        ),
        migrations.RunPython(set_budgets, restore_documents),
    ]
