from __future__ import annotations

from django.conf import settings
from django.db import models

from labeling.models import RiskCategory  # noqa: F401 - re-exported; review code reads it here


class RiskFlag(models.Model):
    """The analyser's view of one image for one category, kept with the version that produced it."""

    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="risk_flags")
    category = models.CharField(max_length=20, choices=RiskCategory.choices)
    score = models.FloatField()
    flagged = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True)
    # What the pixels alone said (before caption evidence): a new caption is combined with
    # these instead of analysing the file again. Null on rows written before they were kept.
    image_score = models.FloatField(null=True, blank=True)
    image_reason = models.CharField(max_length=500, blank=True)
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


# --- Review queue: policy, items, leases, verdicts, adjudication ---------------------------------
# The queue hands out one ReviewItem (a succeeded Caption) per Lease. An item needs `required`
# independent reviews; each review occupies one numbered slot. The database, not Python, guarantees
# that an item never has more live leases than slots and that nobody reviews an item twice.

MAX_REVIEWS = 5


def _default_risky_categories() -> list[str]:
    return list(RiskCategory.values)


class ReviewPolicy(models.Model):
    """How strictly one project's captions are reviewed. Missing row = the defaults below."""

    class AskScope(models.TextChoices):
        BORDERLINE = "borderline", "Borderline images only"
        ALL = "all", "Every image"

    project = models.OneToOneField(
        "labeling.Project", on_delete=models.CASCADE, related_name="review_policy"
    )
    approvals_required = models.PositiveSmallIntegerField(
        default=1, help_text="Independent reviews an ordinary item needs."
    )
    risky_approvals_required = models.PositiveSmallIntegerField(
        default=2, help_text="Independent reviews an item flagged in a risky category needs."
    )
    risky_categories = models.JSONField(
        default=_default_risky_categories,
        blank=True,
        help_text="Risk categories that make an item risky.",
    )
    risky_first = models.BooleanField(default=True, help_text="Serve risky items before others.")
    show_model_name = models.BooleanField(
        default=False, help_text="Show reviewers which model wrote the caption."
    )
    risk_thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text="Flag thresholds, category -> 0..1; a missing one uses the default.",
    )
    risk_ask_model = models.BooleanField(
        default=False,
        help_text="After import, ask the project's default chain whether the image is a chart, "
        "a screenshot, a medical image or a photo; each asked image costs one model call there.",
    )
    risk_ask_scope = models.CharField(
        max_length=12,
        choices=AskScope.choices,
        default=AskScope.BORDERLINE,
        help_text="Borderline: only images whose image-only score in some category lies between "
        "0.2 and that category's threshold, where the answer can change the decision.",
    )
    annotators_see_metrics = models.BooleanField(
        default=False,
        help_text="Let annotators open the comparison and dashboards (admins always can).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(approvals_required__gte=1, approvals_required__lte=MAX_REVIEWS)
                & models.Q(
                    risky_approvals_required__gte=1, risky_approvals_required__lte=MAX_REVIEWS
                ),
                name="reviewpolicy_reviews_in_range",
            )
        ]

    def __str__(self) -> str:
        return f"Review policy of {self.project}"


class ReviewItem(models.Model):
    """One caption waiting for (or done with) review; denormalised so the queue is one index."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ADJUDICATION = "adjudication", "Awaiting adjudication"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    caption = models.OneToOneField(
        "routing.Caption", on_delete=models.CASCADE, related_name="review_item"
    )
    image = models.ForeignKey(
        "labeling.Image", on_delete=models.CASCADE, related_name="review_items"
    )
    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="review_items"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    risky = models.BooleanField(default=False)
    required = models.PositiveSmallIntegerField(default=1)
    reviews_done = models.PositiveSmallIntegerField(default=0)
    priority = models.SmallIntegerField(default=0, help_text="Higher is served first.")
    queued_at = models.DateTimeField()
    # The outcome: the agreed (or adjudicated) text and how much it differs from the model's.
    final_text = models.TextField(blank=True)
    edited = models.BooleanField(null=True, blank=True)
    char_distance = models.PositiveIntegerField(null=True, blank=True)
    word_distance = models.PositiveIntegerField(null=True, blank=True)
    char_effort = models.FloatField(null=True, blank=True)
    word_effort = models.FloatField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(required__gte=1, required__lte=MAX_REVIEWS),
                name="reviewitem_required_in_range",
            ),
        ]
        indexes = [
            # The queue: open items of a project, risky first, then oldest.
            models.Index(
                fields=["project", "-priority", "queued_at", "id"],
                condition=models.Q(state="open"),
                name="reviewitem_queue",
            ),
            models.Index(fields=["project", "state"], name="reviewitem_project_state"),
            models.Index(fields=["image", "state"], name="reviewitem_image_state"),
        ]

    def __str__(self) -> str:
        return f"Review of caption {self.caption_id}"


class Lease(models.Model):
    """One reviewer's claim on one slot of an item until `expires_at` (renewed by heartbeat)."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"
        RELEASED = "released", "Released"
        REVOKED = "revoked", "Revoked"

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="leases")
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_leases"
    )
    slot = models.PositiveSmallIntegerField()
    slot_count = models.PositiveSmallIntegerField(help_text="Required reviews when leased.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The admin who released or reassigned it.",
    )

    class Meta:
        constraints = [
            # A live or finished review holds its slot: at most `required` of them per item.
            models.UniqueConstraint(
                fields=["item", "slot"],
                condition=models.Q(state__in=["active", "done"]),
                name="lease_one_per_slot",
            ),
            models.CheckConstraint(
                condition=models.Q(slot__lt=models.F("slot_count"), slot_count__lte=MAX_REVIEWS),
                name="lease_slot_within_policy",
            ),
            models.UniqueConstraint(
                fields=["item", "reviewer"],
                condition=models.Q(state__in=["active", "done"]),
                name="lease_one_per_reviewer",
            ),
        ]
        indexes = [
            models.Index(
                fields=["item"], condition=models.Q(state="active"), name="lease_active_item"
            ),
            models.Index(
                fields=["reviewer", "project", "created_at"],
                condition=models.Q(state="active"),
                name="lease_active_reviewer",
            ),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(state="active"),
                name="lease_active_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"Lease {self.pk} on item {self.item_id} ({self.state})"


class Verdict(models.Model):
    """A reviewer's decision on one item, saved exactly once per lease."""

    class Decision(models.TextChoices):
        ACCEPT = "accept", "Accept"
        EDIT = "edit", "Edit"
        REJECT = "reject", "Reject"
        SKIP = "skip", "Skip"

    lease = models.OneToOneField(Lease, on_delete=models.CASCADE, related_name="verdict")
    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="verdicts")
    caption = models.ForeignKey(
        "routing.Caption", on_delete=models.CASCADE, related_name="verdicts"
    )
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_verdicts"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    final_text = models.TextField(blank=True)
    reasons = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    late = models.BooleanField(default=False, help_text="Submitted after the lease expired.")
    idempotency_key = models.UUIDField(unique=True)
    char_distance = models.PositiveIntegerField(null=True, blank=True)
    word_distance = models.PositiveIntegerField(null=True, blank=True)
    char_effort = models.FloatField(null=True, blank=True)
    word_effort = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="verdict_one_per_reviewer"),
        ]
        indexes = [
            models.Index(fields=["reviewer", "-created_at"], name="verdict_reviewer_recent"),
            models.Index(fields=["project", "decision"], name="verdict_project_decision"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} on item {self.item_id} by {self.reviewer_id}"

    @property
    def counts(self) -> bool:
        return self.decision != self.Decision.SKIP


class Adjudication(models.Model):
    """An admin's final word on an item whose reviewers disagreed."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    item = models.OneToOneField(ReviewItem, on_delete=models.CASCADE, related_name="adjudication")
    admin = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    final_text = models.TextField(blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Adjudication of item {self.item_id}: {self.decision}"


class RejectReason(models.TextChoices):
    """Why a caption is wrong (after Prodigy's image-caption.diff tags), kept in Verdict.reasons."""

    WRONG_SUBJECT = "wrong_subject", "Wrong subject"
    HALLUCINATED_DETAIL = "hallucinated_detail", "Hallucinated detail"
    WRONG_COUNT = "wrong_count", "Wrong count"
    WRONG_ATTRIBUTE = "wrong_attribute", "Wrong attribute"
    MISREAD_TEXT = "misread_text", "Misread text"
    MISSING_DETAIL = "missing_detail", "Missing key detail"
    UNSAFE = "unsafe", "Unsafe"
    OTHER = "other", "Other (say what)"


class SkipReason(models.TextChoices):
    UNCLEAR_IMAGE = "unclear_image", "Image unclear or broken"
    UNSURE = "unsure", "Not sure"
    NEEDS_EXPERT = "needs_expert", "Needs an expert"
    OTHER = "other", "Other (say what)"


# --- Blind pairwise review ---------------------------------------------------------------------
# A reviewer sees one image and two captions of it by different routes, in random left/right order
# with the model names hidden, and says which is better. One judgement per pair; the same lease
# discipline as the review queue (one live lease per pair, expiry, idempotent submits).


class PairwiseTask(models.Model):
    """Two captions of one image by different routes, waiting for (or done with) a judgement.

    ``caption_a`` has the lower id; ``route_a`` / ``route_b`` are the routes they belong to,
    kept here so results are one join away."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Judged"

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="pairwise_tasks"
    )
    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(
        "routing.CaptionRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    caption_a = models.ForeignKey("routing.Caption", on_delete=models.CASCADE, related_name="+")
    caption_b = models.ForeignKey("routing.Caption", on_delete=models.CASCADE, related_name="+")
    route_a = models.ForeignKey("routing.Route", on_delete=models.PROTECT, related_name="+")
    route_b = models.ForeignKey("routing.Route", on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caption_a", "caption_b"], name="pairwise_unique_pair"),
            models.CheckConstraint(
                condition=models.Q(caption_a__lt=models.F("caption_b")),
                name="pairwise_ordered_pair",
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "id"],
                condition=models.Q(state="open"),
                name="pairwise_open",
            ),
            models.Index(fields=["project", "run"], name="pairwise_project_run"),
        ]

    def __str__(self) -> str:
        return f"Pair {self.caption_a_id} / {self.caption_b_id}"


class PairwiseLease(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        EXPIRED = "expired", "Expired"
        RELEASED = "released", "Passed"

    task = models.ForeignKey(PairwiseTask, on_delete=models.CASCADE, related_name="leases")
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    left_is_a = models.BooleanField(help_text="Which caption this reviewer sees on the left.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One reviewer at a time per pair, and a judged pair is never handed out again.
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(state__in=["active", "done"]),
                name="pairwiselease_one_live",
            ),
            models.UniqueConstraint(
                fields=["reviewer", "project"],
                condition=models.Q(state="active"),
                name="pairwiselease_one_per_reviewer",
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "expires_at"],
                condition=models.Q(state="active"),
                name="pairwiselease_active",
            ),
        ]

    def __str__(self) -> str:
        return f"Pairwise lease {self.pk} ({self.state})"


class PairwiseJudgement(models.Model):
    """The verdict on one pair, in terms of the pair (A = the lower caption id), not of sides."""

    class Outcome(models.TextChoices):
        A = "a", "A better"
        B = "b", "B better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both bad"

    task = models.OneToOneField(PairwiseTask, on_delete=models.CASCADE, related_name="judgement")
    lease = models.OneToOneField(PairwiseLease, on_delete=models.CASCADE, related_name="judgement")
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    left_is_a = models.BooleanField()
    idempotency_key = models.UUIDField(unique=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    late = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["project", "created_at"], name="pairwise_judged")]

    def __str__(self) -> str:
        return f"{self.outcome} on pair {self.task_id}"


# --- Metric rollups ----------------------------------------------------------------------------
# Big projects read their comparison, dashboards and headline figures from these per-day sums,
# rebuilt by a periodic task (review.rollups); small projects are always computed live. A row
# covers one route's captions of one run (or none) made on one day, split by the day review decided
# them and by whether the image is one every route of a comparison run captioned and review
# decided ("shared"). Sums and counts add up across rows; percentiles come from histograms.


class MetricRollupState(models.Model):
    project = models.OneToOneField(
        "labeling.Project", on_delete=models.CASCADE, related_name="metric_rollup"
    )
    refreshed_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    captions = models.PositiveIntegerField(default=0)
    prompt = models.TextField(
        blank=True, default="", help_text="The project's caption prompt when the rollup was taken."
    )

    def __str__(self) -> str:
        return f"Metric rollup of {self.project} at {self.refreshed_at:%Y-%m-%d %H:%M}"


class RollupSlices(models.Model):
    """What lets a rollup answer the reviewer filter and comparisons of any set of routes: every
    row exists once for all outputs (``reviewer`` empty) and once per reviewer for the outputs
    that reviewer gave a verdict on; and says which routes have a decided output of the same
    image, in the same run (``run_routes``) and among the captions of the project's current
    prompt across runs (``prompt_routes``), both written ",3,7," and computed within the row's
    reviewer slice, so "images every chosen route captioned and review decided" is a match on
    each chosen route."""

    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    run_routes = models.TextField(blank=True, db_default="")
    prompt_routes = models.TextField(blank=True, db_default="")
    current_prompt = models.BooleanField(
        db_default=False, help_text="The caption used the prompt in MetricRollupState.prompt."
    )

    # The rollup tables hold derived rows, rebuilt in one transaction from rows that exist then:
    # their foreign keys carry no database constraint (Django still deletes them with what
    # they point to), because the deferred checks of the rebuild's inserts (one per key and row,
    # 2.7 million at 1M verdicts) cost about 30 s at every commit.

    class Meta:
        abstract = True


class OutcomeRollup(RollupSlices):
    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    run = models.ForeignKey(
        "routing.CaptionRun",
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    route = models.ForeignKey(
        "routing.Route", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    day = models.DateField(help_text="When the captions were made (UTC).")
    decided_day = models.DateField(null=True, help_text="When review decided them (UTC).")
    shared = models.BooleanField()
    risk = models.CharField(
        max_length=100, blank=True, help_text="The image's flagged categories, comma-separated."
    )
    produced = models.PositiveIntegerField(default=0)
    reviewed = models.PositiveIntegerField(default=0)
    accepted_as_is = models.PositiveIntegerField(default=0)
    accepted_after_edit = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    awaiting_adjudication = models.PositiveIntegerField(default=0)
    adjudicated = models.PositiveIntegerField(default=0)
    char_effort_sum = models.FloatField(default=0)
    word_effort_sum = models.FloatField(default=0)
    spend_usd = models.FloatField(default=0)
    counted_spend_usd = models.FloatField(default=0)
    review_ms = models.BigIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    sum_y = models.BigIntegerField(default=0)
    sum_xx = models.FloatField(default=0)
    sum_yy = models.BigIntegerField(default=0)
    sum_xy = models.FloatField(default=0)
    multi_reviewed = models.PositiveIntegerField(default=0)
    agreed = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["project", "run", "route"], name="outcomerollup_scope"),
            models.Index(fields=["project", "reviewer"], name="outcomerollup_reviewer"),
        ]

    def __str__(self) -> str:
        return f"Outcomes of route {self.route_id} on {self.day}"


class CallRollup(RollupSlices):
    """The call log per (route called, captions' day, shared), for reliability."""

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    run = models.ForeignKey(
        "routing.CaptionRun",
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    route = models.ForeignKey(
        "routing.Route", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    day = models.DateField()
    shared = models.BooleanField()
    risk = models.CharField(
        max_length=100, blank=True, help_text="The image's flagged categories, comma-separated."
    )
    attempts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    cached = models.PositiveIntegerField(default=0)
    timeouts = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    fallbacks = models.PositiveIntegerField(default=0)
    malformed = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["project", "run", "route"], name="callrollup_scope"),
            models.Index(fields=["project", "reviewer"], name="callrollup_reviewer"),
        ]

    def __str__(self) -> str:
        return f"Calls of route {self.route_id} on {self.day}"


class HistogramRollup(RollupSlices):
    """Counts per log-spaced millisecond bin: attempt latency, end-to-end latency, review time."""

    class Kind(models.TextChoices):
        ATTEMPT = "attempt", "Latency per attempt"
        E2E = "e2e", "Latency end to end"
        REVIEW = "review", "Review time per decided item"

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    run = models.ForeignKey(
        "routing.CaptionRun",
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    route = models.ForeignKey(
        "routing.Route", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    day = models.DateField()
    shared = models.BooleanField()
    risk = models.CharField(
        max_length=100, blank=True, help_text="The image's flagged categories, comma-separated."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    bin = models.PositiveSmallIntegerField()
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["project", "kind", "run"], name="histrollup_scope"),
            models.Index(fields=["project", "reviewer"], name="histrollup_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} bin {self.bin} of route {self.route_id} on {self.day}: {self.n}"


class HistogramTotal(RollupSlices):
    """HistogramRollup summed over days: what scopes without a date range read (a day's bins
    split a route's histogram sixty ways over two months of history)."""

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    run = models.ForeignKey(
        "routing.CaptionRun",
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    route = models.ForeignKey(
        "routing.Route", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    shared = models.BooleanField()
    risk = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=HistogramRollup.Kind.choices)
    bin = models.PositiveSmallIntegerField()
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["project", "kind", "run"], name="histtotal_scope"),
            models.Index(fields=["project", "reviewer"], name="histtotal_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} bin {self.bin} of route {self.route_id}: {self.n}"


class LabelRollup(RollupSlices):
    """Counts per label: reject reasons and risk categories of rejected outputs (on the captions'
    day), and verdicts and skips per reviewer (on the verdicts' day)."""

    class Kind(models.TextChoices):
        REASON = "reason", "Reject reason"
        RISK = "risk", "Risk category of a reject"
        VERDICTS = "verdicts", "Counted verdicts of a reviewer"
        SKIPS = "skips", "Skips of a reviewer"

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    run = models.ForeignKey(
        "routing.CaptionRun",
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    route = models.ForeignKey(
        "routing.Route", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    day = models.DateField()
    shared = models.BooleanField()
    risk = models.CharField(
        max_length=100, blank=True, help_text="The image's flagged categories, comma-separated."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    label = models.CharField(max_length=100)
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["project", "kind", "run"], name="labelrollup_scope"),
            models.Index(fields=["project", "reviewer"], name="labelrollup_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.label} of route {self.route_id} on {self.day}: {self.n}"


class ImageRollup(models.Model):
    """One image of a comparison run: its routes' outcomes, for the side-by-side view."""

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    run = models.ForeignKey(
        "routing.CaptionRun", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    image = models.ForeignKey(
        "labeling.Image", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    shared = models.BooleanField()
    risk = models.CharField(max_length=100, blank=True)
    accepted = models.PositiveSmallIntegerField(default=0)
    rejected = models.PositiveSmallIntegerField(default=0)
    disputed = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["run", "image"], condition=models.Q(shared=True), name="imagerollup_shared"
            )
        ]

    def __str__(self) -> str:
        return f"Image {self.image_id} of run {self.run_id}"


class ImageRouteRollup(models.Model):
    """One image's outputs of one route in one run, per reviewer slice (``reviewer`` NULL: every
    reviewer), with the routes decided for the image in the run and under the current prompt
    across runs: the side-by-side view of a reviewer or of any set of routes across runs."""

    # project and reviewer: their index is the one below
    project = models.ForeignKey(
        "labeling.Project",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    run = models.ForeignKey(
        "routing.CaptionRun",
        on_delete=models.CASCADE,
        related_name="+",
        null=True,
        db_constraint=False,
    )
    image = models.ForeignKey(
        "labeling.Image", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    route = models.ForeignKey(
        "routing.Route", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        null=True,
        db_constraint=False,
        db_index=False,
    )
    current_prompt = models.BooleanField()
    run_routes = models.TextField(blank=True)
    prompt_routes = models.TextField(blank=True)
    risk = models.CharField(max_length=100, blank=True)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    disputed = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["project", "reviewer", "image"], name="imagerouterollup_image")
        ]

    def __str__(self) -> str:
        return f"Image {self.image_id}, route {self.route_id}, run {self.run_id}"
