"""Document.queued_at: when it last joined the line for ingestion; the ingestion progress counts
a wave of work from it. Existing documents joined it when they were uploaded."""

import django.utils.timezone
from django.db import migrations, models


def from_upload(apps, schema_editor):
    Document = apps.get_model("knowledge", "Document")
    Document.objects.update(queued_at=models.F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0006_document_ocr"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="queued_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(from_upload, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(fields=["tenant", "updated_at"], name="document_tenant_updated"),
        ),
    ]
