from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0007_document_queued_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="ingestion_batch",
            field=models.CharField(blank=True, max_length=36),
        ),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(
                condition=models.Q(("stage", "queued"), ("status", "pending")),
                fields=["updated_at"],
                name="document_queued",
            ),
        ),
    ]
