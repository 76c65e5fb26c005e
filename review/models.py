from __future__ import annotations

from django.conf import settings
from django.db import models


class RiskCategory(models.TextChoices):
    CHART = "chart", "Chart"
    SCREENSHOT = "screenshot", "Screenshot"
    MEDICAL = "medical", "Medical-looking"


class RiskFlag(models.Model):
    """The analyser's view of one image for one category, kept with the version that produced it."""

    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="risk_flags")
    category = models.CharField(max_length=20, choices=RiskCategory.choices)
    score = models.FloatField()
    flagged = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True)
    analyser_version = models.CharField(max_length=40)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "category"], name="riskflag_unique_category")
        ]
        indexes = [models.Index(fields=["category", "flagged"], name="riskflag_category_flagged")]

    def __str__(self) -> str:
        return f"{self.category} {self.score:.2f} on image {self.image_id}"


class RiskCorrection(models.Model):
    """An admin's correction of a flag; kept forever and counted."""

    image = models.ForeignKey(
        "labeling.Image", on_delete=models.CASCADE, related_name="risk_corrections"
    )
    category = models.CharField(max_length=20, choices=RiskCategory.choices)
    flagged = models.BooleanField(help_text="What the admin says is true.")
    note = models.CharField(max_length=500, blank=True)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["image", "category", "-created_at"], name="riskfix_image")]

    def __str__(self) -> str:
        return f"{self.category}={self.flagged} on image {self.image_id}"
