from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

USD: dict[str, Any] = {"max_digits": 14, "decimal_places": 8}


def _risk_choices() -> list[tuple[str, str]]:
    from labeling.models import RiskCategory

    return [("", "Any flagged risk"), *RiskCategory.choices]


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
    params = models.JSONField(
        default=dict, blank=True, help_text="Default decoding parameters, e.g. max_new_tokens."
    )
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text="Provider options, e.g. Replicate version, Eden AI fallbacks, local batch_size.",
    )
    base_url = models.URLField(
        blank=True, help_text="Overrides the provider's base URL from the environment."
    )
    timeout_s = models.FloatField(default=60.0, help_text="Timeout of one attempt.")
    max_attempts = models.PositiveSmallIntegerField(
        default=3, help_text="Tries on this route per caption, the first included."
    )
    enabled = models.BooleanField(default=True)
    # Prices (USD). Whatever applies: per call, per second of vendor hardware (Replicate), per GPU
    # hour (local workers, Ollama), per 1k tokens (LLM vendors when the response has no cost).
    usd_per_call = models.DecimalField(**USD, null=True, blank=True)
    usd_per_second = models.DecimalField(**USD, null=True, blank=True)
    gpu_hour_usd = models.DecimalField(**USD, null=True, blank=True)
    usd_per_1k_input_tokens = models.DecimalField(**USD, null=True, blank=True)
    usd_per_1k_output_tokens = models.DecimalField(**USD, null=True, blank=True)
    expected_seconds = models.FloatField(
        default=2.0, help_text="Typical seconds per call, for estimates before any call was made."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return self.provider == self.Provider.LOCAL


class Chain(models.Model):
    """A project's fallback chain: the primary route, then fallbacks in order."""

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="chains")
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(
        default=False, help_text="Used for images that no rule sends elsewhere."
    )
    deadline_s = models.FloatField(
        default=120.0, help_text="Total time for one caption across every attempt and fallback."
    )
    routes = models.ManyToManyField(Route, through="ChainStep", related_name="chains")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="chain_unique_name"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_default=True), name="chain_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ChainStep(models.Model):
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="steps")
    route = models.ForeignKey(Route, on_delete=models.PROTECT, related_name="steps")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["chain", "position"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "position"], name="chainstep_unique_position"),
            models.UniqueConstraint(fields=["chain", "route"], name="chainstep_unique_route"),
        ]

    def __str__(self) -> str:
        return f"{self.chain} #{self.position}: {self.route}"


class ChainRule(models.Model):
    """Send images with a flagged risk to another chain (e.g. charts to a stronger model)."""

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="chain_rules"
    )
    category = models.CharField(max_length=20, blank=True, choices=_risk_choices)
    min_score = models.FloatField(default=0.0)
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "position", "id"]

    def __str__(self) -> str:
        return f"{self.category or 'any risk'} ≥ {self.min_score:g} → {self.chain}"


class CaptionRun(models.Model):
    """An admin's request to caption a set of images with a chain, or with several routes side by
    side (a comparison run)."""

    class Kind(models.TextChoices):
        CHAIN = "chain", "Fallback chain"
        COMPARISON = "comparison", "Comparison of routes"

    class Selection(models.TextChoices):
        ALL = "all", "All images"
        FILTERED = "filtered", "Filtered images"
        SAMPLE = "sample", "Random sample"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        BUDGET = "budget", "Stopped at budget cap"
        CANCELLED = "cancelled", "Cancelled"
        FINISHED = "finished", "Finished"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    chain = models.ForeignKey(
        Chain, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    apply_rules = models.BooleanField(
        default=True, help_text="Send risky images to the chain their project rule names."
    )
    routes = models.ManyToManyField(Route, blank=True, related_name="runs")
    task = models.CharField(max_length=20, default="caption")
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    json_schema = models.JSONField(null=True, blank=True)
    use_cache = models.BooleanField(default=True)
    selection = models.CharField(max_length=10, choices=Selection.choices, default="all")
    selection_detail = models.JSONField(default=dict, blank=True)
    image_count = models.PositiveIntegerField(default=0)
    caption_count = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(
        default=0, help_text="Requests that already had a caption (pending, running or done)."
    )
    budget_usd = models.DecimalField(**USD, null=True, blank=True)
    estimated_usd = models.DecimalField(**USD, null=True, blank=True)
    spent_usd = models.DecimalField(**USD, default=0)
    reserved_usd = models.DecimalField(**USD, default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The run page's figures, computed once when nothing in the run can change any more (a run
    # of a million captions would otherwise aggregate its calls on every poll); emptied when a
    # retry re-opens the run.
    summary = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="run_project_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(reserved_usd__gte=0), name="run_reserved_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.RUNNING, self.Status.PAUSED, self.Status.BUDGET)


class Caption(models.Model):
    """One model output for one image (or an imported prediction)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Origin(models.TextChoices):
        MODEL = "model", "Model run"
        IMPORTED = "imported", "Imported prediction"

    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="captions")
    # The route that produced the text (for a chain: the route that finally served it).
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

    # --- model runs ---------------------------------------------------------------------------
    chain = models.ForeignKey(
        Chain, null=True, blank=True, on_delete=models.SET_NULL, related_name="captions"
    )
    target_route = models.ForeignKey(
        Route,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The single route asked (comparison runs, the caption command).",
    )
    run = models.ForeignKey(
        CaptionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="captions"
    )
    task = models.CharField(max_length=20, default="caption")
    json_schema = models.JSONField(null=True, blank=True)
    # sha256 of (image, chain or route, task, prompt, params): at most one live caption per request.
    # NULL (not "") for imported predictions, which the unique constraint must not compare.
    request_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    cost_usd = models.DecimalField(**USD, default=0, help_text="Every attempt, fallbacks included.")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lost_count = models.PositiveSmallIntegerField(
        default=0, help_text="Times a worker died while holding it (poison-message limit)."
    )
    # Where to continue after a hand-over to a GPU worker: chain position, tries, last reason.
    resume = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["image", "status"], name="caption_image_status"),
            models.Index(fields=["run", "status"], name="caption_run_status"),
            models.Index(fields=["run", "image"], name="caption_run_image"),
            models.Index(fields=["status", "lease_until"], name="caption_status_lease"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["request_key"],
                condition=Q(status__in=["pending", "running", "succeeded"]),
                name="caption_unique_live_request",
            )
        ]

    def __str__(self) -> str:
        return f"Caption #{self.pk} of image {self.image_id}"


class ModelCall(models.Model):
    """One attempt at one route for one caption: the call log every metric is computed from."""

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CACHED = "cached", "Cached result"
        LOST = "lost", "Lost (worker died)"

    class CostSource(models.TextChoices):
        PROVIDER = "provider", "Reported by the provider"
        COMPUTED = "computed", "Computed from tokens or seconds"
        CONFIGURED = "configured", "Configured rate"
        ESTIMATED = "estimated", "Estimated (outcome unknown)"
        CACHE = "cache", "Cached result (free)"
        NONE = "none", "Unknown"

    # Exactly one of the two: a caption's attempt, or the one call of a route test (which is no
    # caption, so no review, metric, export or run figure ever sees it; its cost still counts).
    caption = models.ForeignKey(
        Caption, null=True, blank=True, on_delete=models.CASCADE, related_name="calls"
    )
    route_test = models.ForeignKey(
        "RouteTest", null=True, blank=True, on_delete=models.CASCADE, related_name="calls"
    )
    run = models.ForeignKey(
        CaptionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    route = models.ForeignKey(Route, on_delete=models.PROTECT, related_name="calls")
    attempt = models.PositiveSmallIntegerField(help_text="Position in the caption's call log.")
    route_attempt = models.PositiveSmallIntegerField(default=1, help_text="Try on this route.")
    trigger = models.CharField(max_length=60)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IN_FLIGHT)
    error_class = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    timeout_s = models.FloatField(null=True, blank=True)
    cost_usd = models.DecimalField(**USD, null=True, blank=True)
    cost_source = models.CharField(
        max_length=12, choices=CostSource.choices, default=CostSource.NONE
    )
    reserved_usd = models.DecimalField(**USD, default=0)
    estimate_usd = models.DecimalField(
        **USD,
        null=True,
        blank=True,
        help_text="The route's expected cost when the call started: what a lost call counts.",
    )
    request_id = models.CharField(
        max_length=200, blank=True, help_text="The vendor's id, stored as soon as it answers."
    )
    submitted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the vendor accepted the request."
    )
    adjustments = models.JSONField(
        default=list,
        blank=True,
        help_text="What was changed to fit the provider (image re-encoded, parameters clamped).",
    )
    truncated = models.BooleanField(
        default=False, help_text="The answer was cut off at the token limit."
    )
    served_model = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True, help_text="The cleaned answer of a succeeded call.")
    raw_output = models.TextField(blank=True, help_text="Truncated, secrets removed.")
    usage = models.JSONField(default=dict, blank=True)
    cache_key = models.CharField(max_length=64, blank=True)
    cached_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["caption", "attempt"]
        indexes = [
            models.Index(fields=["route", "-started_at"], name="call_route_recent"),
            models.Index(fields=["cache_key", "status"], name="call_cache_key"),
            models.Index(fields=["run", "status"], name="call_run_status"),
            models.Index(fields=["status", "started_at"], name="call_status_started"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["caption", "attempt"], name="call_unique_attempt"),
            models.CheckConstraint(
                condition=Q(caption__isnull=False, route_test__isnull=True)
                | Q(caption__isnull=True, route_test__isnull=False),
                name="call_caption_or_route_test",
            ),
        ]

    def __str__(self) -> str:
        if self.caption_id is None:
            return f"{self.route} test {self.route_test_id}: {self.status}"
        return f"{self.route} try {self.attempt} for caption {self.caption_id}: {self.status}"


class RouteTest(models.Model):
    """One call of one route on one image, asked by a site admin to see whether the route works
    (its answer, latency, cost or error). It runs on the route's own queue (``api``, or ``gpu``
    for local models), as captions do, but it is not a caption: nothing that reviews, measures,
    exports or counts captions sees it. Its call is logged (``ModelCall.route_test``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="tests")
    #: The uploaded image; empty: the bundled sample (``routing.services.route_tests``).
    image = models.FileField(upload_to="route-tests/%Y/%m/", blank=True, max_length=255)
    image_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    served_model = models.CharField(max_length=200, blank=True)
    error_class = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(**USD, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: Until when a worker may still take it (pending) or answer it (running); past it, the
    #: test is failed so that the route can be tested again.
    lease_until = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["route", "-id"], name="routetest_route_recent")]
        constraints = [
            models.UniqueConstraint(
                fields=["route"],
                condition=Q(status__in=["pending", "running"]),
                name="routetest_one_live_per_route",
            )
        ]

    def __str__(self) -> str:
        return f"Test #{self.pk} of {self.route_id}"

    @property
    def is_live(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)


class RunCounter(models.Model):
    """A running run's totals, kept current by PostgreSQL triggers on captions and calls (routing
    migration 0008), so its page reads a few rows instead of aggregating every call on every poll.

    Every statement that inserts, updates or deletes captions or calls of a run adds one row of
    differences per (run, route) in its own transaction: a caption's row has no route and counts
    its status, a call's row counts its route's attempts, outcomes, triggers, spend and latency.
    The totals are the sums of a run's rows; ``routing.services.counters`` folds them back into
    one row per key (reads do it when they find more, the sweep for every run). Only inserts and
    deletes of whole rows: workers never wait on each other's counter row, and every writer
    (services, the sweep, bulk updates, the admin, cascades) is counted without code hooks.
    """

    run = models.ForeignKey(
        CaptionRun, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    # No route: the run's captions by status; a route: that route's calls.
    route = models.ForeignKey(
        Route,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    captions = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    running = models.BigIntegerField(default=0)
    succeeded = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    cancelled = models.BigIntegerField(default=0)
    calls = models.BigIntegerField(default=0)
    calls_in_flight = models.BigIntegerField(default=0)
    calls_succeeded = models.BigIntegerField(default=0)
    calls_failed = models.BigIntegerField(default=0)
    calls_cached = models.BigIntegerField(default=0)
    calls_lost = models.BigIntegerField(default=0)
    retries = models.BigIntegerField(default=0)
    fallbacks = models.BigIntegerField(default=0)
    timeouts = models.BigIntegerField(default=0)
    spent_usd = models.DecimalField(max_digits=24, decimal_places=8, default=0)
    # Answered calls (succeeded or failed, with a measured latency): their mean latency.
    latency_ms_sum = models.BigIntegerField(default=0)
    latency_n = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["run", "route"], name="runcounter_run_route")]

    def __str__(self) -> str:
        return f"Counters of run {self.run_id}, route {self.route_id}"
