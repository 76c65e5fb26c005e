from __future__ import annotations

from typing import Any

from django import forms

from review.models import (
    MAX_REVIEWS,
    Adjudication,
    RejectReason,
    ReviewPolicy,
    RiskCategory,
    SkipReason,
    Verdict,
)


class VerdictForm(forms.Form):
    """What every verdict button posts. The service decides what is valid for each decision."""

    decision = forms.ChoiceField(choices=Verdict.Decision.choices)
    idempotency_key = forms.UUIDField()
    text = forms.CharField(required=False, strip=False, max_length=20_000)
    reasons = forms.MultipleChoiceField(
        required=False, choices=sorted(set(RejectReason.choices) | set(SkipReason.choices))
    )
    note = forms.CharField(required=False, max_length=2_000)
    time_spent_ms = forms.IntegerField(required=False, min_value=0)


def _threshold_field(label: str) -> forms.FloatField:
    return forms.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        label=f"{label} threshold",
        widget=forms.NumberInput(attrs={"min": 0, "max": 1, "step": "0.01"}),
    )


class ReviewPolicyForm(forms.ModelForm):
    """The policy, plus one flag threshold per risk category (blank = the site default)."""

    risky_categories = forms.MultipleChoiceField(
        required=False,
        choices=RiskCategory.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Images flagged in these categories get the stricter review.",
    )

    class Meta:
        model = ReviewPolicy
        fields = [
            "approvals_required",
            "risky_approvals_required",
            "risky_categories",
            "risky_first",
            "show_model_name",
            "risk_ask_model",
            "risk_ask_scope",
            "annotators_see_metrics",
        ]
        widgets = {
            "approvals_required": forms.NumberInput(attrs={"min": 1, "max": MAX_REVIEWS}),
            "risky_approvals_required": forms.NumberInput(attrs={"min": 1, "max": MAX_REVIEWS}),
        }

    def __init__(
        self, *args: Any, default_thresholds: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # A form that leaves the scope out (an older script) keeps the stored one.
        self.fields["risk_ask_scope"].required = False
        own = (self.instance.risk_thresholds or {}) if self.instance else {}
        for category, label in RiskCategory.choices:
            field = _threshold_field(label)
            field.initial = own.get(category)
            if default_thresholds and category in default_thresholds:
                field.widget.attrs["placeholder"] = f"{default_thresholds[category]:g}"
            self.fields[f"threshold_{category}"] = field

    def threshold_fields(self) -> list[forms.BoundField]:
        return [self[f"threshold_{category}"] for category in RiskCategory.values]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        for name in ("approvals_required", "risky_approvals_required"):
            value = data.get(name)
            if value is not None and not 1 <= value <= MAX_REVIEWS:
                self.add_error(name, f"Between 1 and {MAX_REVIEWS}.")
        thresholds = {}
        for category in RiskCategory.values:
            value = data.pop(f"threshold_{category}", None)
            if value is not None:
                thresholds[category] = value
        data["risk_thresholds"] = thresholds
        return data


class RiskCorrectionForm(forms.Form):
    """An admin's word on one category of one image."""

    category = forms.ChoiceField(choices=RiskCategory.choices)
    flagged = forms.TypedChoiceField(
        choices=[("1", "Flagged"), ("0", "Not flagged")], coerce=lambda v: v == "1"
    )
    note = forms.CharField(required=False, max_length=500)


class RiskBulkCorrectionForm(RiskCorrectionForm):
    """The same word on one category for the images ticked in the project grid."""

    images = forms.TypedMultipleChoiceField(coerce=int, choices=())
    query = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, image_ids: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["images"].choices = [(pk, pk) for pk in image_ids]


class ReassignForm(forms.Form):
    reviewer = forms.ModelChoiceField(queryset=None, label="Give to")

    def __init__(self, *args, reviewers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewer"].queryset = reviewers


class AdjudicationForm(forms.Form):
    decision = forms.ChoiceField(choices=Adjudication.Decision.choices, widget=forms.RadioSelect)
    text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Approved text"
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MetricFilterForm(forms.Form):
    """What the comparison and dashboards are computed over (every field optional, GET)."""

    run = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any run")
    routes = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )
    group = forms.ChoiceField(
        choices=[("route", "Per route"), ("model", "Per model")], required=False
    )
    risk = forms.ChoiceField(
        choices=[("", "Any image"), *RiskCategory.choices], required=False, label="Risk"
    )
    reviewer = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any reviewer")
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    show = forms.ChoiceField(choices=(), required=False, label="Images")

    def __init__(self, *args: Any, runs, routes, reviewers, image_filters, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["run"].queryset = runs
        self.fields["run"].label_from_instance = lambda run: (
            f"#{run.pk} {run.get_kind_display().lower()} · {run.created_at:%Y-%m-%d}"
        )
        self.fields["routes"].queryset = routes
        self.fields["reviewer"].queryset = reviewers
        self.fields["show"].choices = list(image_filters.items())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end comes before the start.")
        return data


class PairwiseJudgeForm(forms.Form):
    side = forms.ChoiceField(
        choices=[
            ("left", "Left better"),
            ("right", "Right better"),
            ("tie", "Tie"),
            ("both_bad", "Both bad"),
        ]
    )
    idempotency_key = forms.UUIDField()
    time_spent_ms = forms.IntegerField(required=False, min_value=0)


class PairwiseCreateForm(forms.Form):
    run = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Every run (same prompt, different routes)"
    )

    def __init__(self, *args: Any, runs, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["run"].queryset = runs
