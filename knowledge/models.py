from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.models import Tenant, TenantOwnedModel


class Document(TenantOwnedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Stage(models.TextChoices):
        # Pending documents wait in the database for their tenant's turn, then are queued.
        WAITING = "waiting", "Waiting for its turn"
        QUEUED = "queued", "Queued"
        EXTRACTING = "extracting", "Extracting text"
        CHUNKING = "chunking", "Chunking"
        EMBEDDING = "embedding", "Embedding"
        INDEXING = "indexing", "Indexing"
        DONE = "done", "Done"

    title = models.CharField(max_length=300)
    filename = models.CharField(max_length=255)
    kind = models.CharField(max_length=16)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Relative to MEDIA_ROOT, always under tenants/<tenant id>/.
    file_path = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.WAITING)
    progress = models.FloatField(default=0.0, help_text="0 to 1, within the whole ingestion")
    # The ingestion task the document was last queued in (its Celery task id): a task carries
    # several documents of one tenant, and ingests only those still queued in it.
    ingestion_batch = models.CharField(max_length=36, blank=True)
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=100, blank=True)
    # Pages whose text came from text recognition (OCR; an image counts one), and the
    # recogniser's mean confidence over their characters (0 to 1).
    ocr_pages = models.PositiveIntegerField(default=0)
    ocr_confidence = models.FloatField(null=True, blank=True)
    # The Milvus collection holding the document's vectors (one per embedding model).
    vector_collection = models.CharField(max_length=200, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ingested_at = models.DateTimeField(null=True, blank=True)
    # When it last joined the line for ingestion: its upload, or the request to index it again
    # (reindex, a web page fetched anew). The ingestion progress counts a wave of work from it.
    queued_at = models.DateTimeField(default=timezone.now)
    # A page of a web source (kind `web`): the address it was fetched from (cited with the
    # page's passages) and when. Empty and null for uploaded files.
    source_url = models.URLField(max_length=2000, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Uploads are refused as duplicates by their bytes; two web pages may well read the
            # same (a page and its printable copy), and are told apart by their URL instead.
            models.UniqueConstraint(
                fields=["tenant", "sha256"], condition=~models.Q(kind="web"), name="one_copy_per_tenant"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status"]),
            # The list's order within a tenant: a page is read from the index, not sorted.
            models.Index(fields=["tenant", "-created_at", "-id"], name="document_tenant_newest"),
            # The documents in the shared task queue, across tenants: a batch asks whether
            # another tenant's waits before each of its documents (knowledge/ingestion.py).
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status="pending", stage="queued"),
                name="document_queued",
            ),
            # The ingestion progress reads the documents finished lately (knowledge/selectors.py).
            models.Index(fields=["tenant", "updated_at"], name="document_tenant_updated"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def ocr_confidence_percent(self) -> int | None:
        return None if self.ocr_confidence is None else round(self.ocr_confidence * 100)


class Chunk(TenantOwnedModel):
    """A passage of a document, as indexed; its primary key is the vector's id in Milvus."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page = models.PositiveIntegerField(null=True, blank=True)
    heading = models.CharField(max_length=300, blank=True)
    # Keyword terms in the chunk (BM25's document length) and its distinct term ids, kept so
    # that removing the chunk can take it out of the tenant's term statistics exactly.
    term_count = models.PositiveIntegerField(default=0)
    term_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="one_chunk_per_position")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"


class KeywordCorpus(models.Model):
    """A tenant's keyword statistics: how many chunks it has indexed and their total length.
    With `TermFrequency` they give BM25 its IDF and average length, per tenant, so that no
    tenant's vocabulary shapes another tenant's ranking."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True, related_name="+")
    chunk_count = models.PositiveBigIntegerField(default=0)
    term_total = models.PositiveBigIntegerField(default=0)

    objects = models.Manager()

    def __str__(self) -> str:
        return f"keyword corpus of {self.tenant_id}"

    @property
    def average_length(self) -> float:
        return self.term_total / self.chunk_count if self.chunk_count else 0.0


class TermFrequency(TenantOwnedModel):
    """How many of a tenant's chunks contain a keyword term (its document frequency)."""

    term_id = models.BigIntegerField()
    chunk_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "term_id"], name="one_frequency_per_term")]


class Faq(TenantOwnedModel):
    """A curated answer: when a customer's question matches `question` or one of its
    `alternatives` closely enough, `answer` is given word for word instead of a generated one."""

    question = models.CharField(max_length=500)
    # The question folded for comparison (knowledge.faq_matching.question_key): one pair per
    # question within a tenant, whatever its script, width or punctuation.
    question_key = models.CharField(max_length=500)
    alternatives = models.JSONField(default=list, blank=True)
    answer = models.TextField()
    enabled = models.BooleanField(default=True)
    hit_count = models.PositiveIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    # The embeddings of the question and each alternative, in that order (float32, row-major),
    # and the model that made them; empty until computed (a provider outage leaves them empty
    # and the matcher computes them on its next use).
    embeddings = models.BinaryField(default=b"", blank=True)
    embedding_model = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "question_key"], name="one_faq_per_question")
        ]
        indexes = [models.Index(fields=["tenant", "enabled"], name="faq_tenant_enabled")]

    def __str__(self) -> str:
        return self.question

    @property
    def phrasings(self) -> list[str]:
        return [self.question, *self.alternatives]
