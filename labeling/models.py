from __future__ import annotations

from django.conf import settings
from django.db import models


class RiskCategory(models.TextChoices):
    """Kinds of image that are easy to caption subtly wrong. Defined here, beside ``Image``,
    because both routing (risk rules choose chains) and review (flags, stricter review) use them
    and routing must not import review."""

    CHART = "chart", "Chart"
    SCREENSHOT = "screenshot", "Screenshot"
    MEDICAL = "medical", "Medical-looking"


class Project(models.Model):
    class TaskType(models.TextChoices):
        CAPTION = "caption", "Caption"
        QUESTION = "question", "Question"
        JSON = "json", "Structured JSON"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    caption_prompt = models.TextField(
        default="Describe this image in one sentence.",
        help_text="The prompt or question sent to every model route.",
    )
    task_type = models.CharField(max_length=20, choices=TaskType.choices, default=TaskType.CAPTION)
    guidelines = models.TextField(
        blank=True,
        help_text="What reviewers should look for, in Markdown; shown on the review screen.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Invitation(models.Model):
    """A link that lets someone join a project: a new person (they choose a username and a
    password) or an account an admin created without a password (they choose one). Only the
    SHA-256 of the link's secret is stored; the link is shown once and sent by email."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The account it sets a password for, when an admin created one.",
    )
    role = models.CharField(
        max_length=20, choices=Membership.Role.choices, default=Membership.Role.ANNOTATOR
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"], name="invitation_project")]

    def __str__(self) -> str:
        return f"Invitation to {self.project} for {self.email or self.user}"


class ImportBatch(models.Model):
    class Kind(models.TextChoices):
        UPLOAD = "upload", "Browser upload"
        ZIP = "zip", "Zip archive"
        PATH = "path", "Files and folders"
        URL = "url", "URL list"
        PREDICTIONS = "predicted", "Predictions made elsewhere"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    label = models.CharField(max_length=300, blank=True, help_text="Zip name, folder or URL list.")
    expected = models.PositiveIntegerField(null=True, blank=True, help_text="Files announced.")
    total = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Uploaded archive or URL list waiting for a worker; deleted once processed.
    payload = models.FileField(upload_to="imports/%Y/%m/", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"], name="batch_project_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def done_count(self) -> int:
        return self.imported + self.duplicates + self.rejected

    @property
    def progress_percent(self) -> int:
        goal = self.expected or self.total
        if not goal:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, round(100 * self.done_count / goal))


class Image(models.Model):
    class Source(models.TextChoices):
        UPLOAD = "upload", "Upload"
        PATH = "path", "Path"
        URL = "url", "URL"
        ZIP = "zip", "Zip member"

    class Status(models.TextChoices):
        NEW = "new", "New"
        CAPTIONED = "captioned", "Captioned"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    # The original bytes, untouched (exports use these); never served as-is.
    file = models.FileField(upload_to="originals/%Y/%m/", max_length=300)
    # Served derivatives: orientation applied, RGB, no metadata.
    display = models.FileField(upload_to="display/%Y/%m/", max_length=300, blank=True)
    # Why the served copies (thumbnails, full-size copy) could not be made, '' when nothing
    # failed: shown on the image's page, and not tried again on every request.
    display_error = models.TextField(blank=True)
    display_failed_at = models.DateTimeField(null=True, blank=True)
    thumb_small = models.FileField(upload_to="thumbs/%Y/%m/", max_length=300, blank=True)
    thumb_large = models.FileField(upload_to="thumbs/%Y/%m/", max_length=300, blank=True)
    sha256 = models.CharField(max_length=64)
    phash = models.BigIntegerField(help_text="64-bit difference hash, signed.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    mode = models.CharField(max_length=10)
    byte_size = models.PositiveBigIntegerField()
    original_name = models.CharField(max_length=500)
    source = models.CharField(max_length=10, choices=Source.choices)
    source_detail = models.CharField(max_length=1000, blank=True, help_text="Path, URL or member.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    near_duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="near_duplicates"
    )
    near_duplicate_distance = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_unique_sha256"),
        ]
        indexes = [
            models.Index(fields=["project", "-id"], name="image_project_recent"),
            models.Index(fields=["project", "status", "-id"], name="image_project_status"),
            models.Index(fields=["batch", "-id"], name="image_batch_recent"),
        ]

    def __str__(self) -> str:
        return self.original_name

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1_000_000


class ImportItem(models.Model):
    """One file's outcome in a batch: what a user needs to see to fix and retry it."""

    class Status(models.TextChoices):
        IMPORTED = "imported", "Imported"
        DUPLICATE = "duplicate", "Duplicate"
        REJECTED = "rejected", "Rejected"

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="items")
    source = models.CharField(max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.TextField(blank=True)
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_items"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["batch", "status", "id"], name="item_batch_status")]

    def __str__(self) -> str:
        return f"{self.source}: {self.status}"


class Export(models.Model):
    """One export of a project's reviewed captions: its options, progress and the file it made."""

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSON Lines"
        CSV = "csv", "CSV"
        COCO = "coco", "COCO captions"
        HF = "hf", "Hugging Face imagefolder"
        LABELSTUDIO = "labelstudio", "Label Studio JSON"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=12, choices=Format.choices)
    # Filters and options as given (labeling.services.export.ExportSpec.as_options).
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveBigIntegerField(default=0, help_text="Rows and image files to write.")
    done = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0, help_text="Caption rows in the file.")
    # Written through the storage API; downloaded only through the permission-checked view.
    file = models.FileField(upload_to="exports/%Y/%m/", max_length=300, blank=True)
    file_name = models.CharField(max_length=200, blank=True, help_text="Name offered on download.")
    byte_size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="export_project_recent")]

    def __str__(self) -> str:
        return f"Export #{self.pk} ({self.get_format_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, round(100 * self.done / self.total))
