from __future__ import annotations

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


class ReviewPolicyForm(forms.ModelForm):
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
        ]
        widgets = {
            "approvals_required": forms.NumberInput(attrs={"min": 1, "max": MAX_REVIEWS}),
            "risky_approvals_required": forms.NumberInput(attrs={"min": 1, "max": MAX_REVIEWS}),
        }

    def clean(self):
        data = super().clean()
        for name in ("approvals_required", "risky_approvals_required"):
            value = data.get(name)
            if value is not None and not 1 <= value <= MAX_REVIEWS:
                self.add_error(name, f"Between 1 and {MAX_REVIEWS}.")
        return data


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
