from __future__ import annotations

from django.db import models


class Route(models.Model):
    """A named model endpoint: provider + model + parameters + price settings."""

    class Provider(models.TextChoices):
        EDENAI = "edenai", "Eden AI (v3 chat)"
        EDENAI_V2 = "edenai_v2", "Eden AI (v2 question answer)"
        REPLICATE = "replicate", "Replicate"
        OLLAMA = "ollama", "Ollama"
        LOCAL = "local", "Local GPU worker"

    name = models.SlugField(max_length=100, unique=True)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    model = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    timeout_s = models.FloatField(default=60.0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Caption(models.Model):
    """One model output for one image (or an imported prediction)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Origin(models.TextChoices):
        MODEL = "model", "Model run"
        IMPORTED = "imported", "Imported prediction"

    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="captions")
    route = models.ForeignKey(
        Route, null=True, blank=True, on_delete=models.PROTECT, related_name="captions"
    )
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MODEL)
    model_name = models.CharField(max_length=200, blank=True, help_text="Model that wrote it.")
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["image", "status"], name="caption_image_status")]

    def __str__(self) -> str:
        return f"Caption #{self.pk} of image {self.image_id}"
