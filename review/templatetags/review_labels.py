"""Words for stored codes: ``{{ verdict.reasons|reason_labels }}`` -> ["Wrong subject", ...]."""

from __future__ import annotations

from django import template

from review.models import RejectReason, SkipReason

register = template.Library()

_LABELS = {**dict(SkipReason.choices), **dict(RejectReason.choices)}
_LABELS["other"] = "Other"


@register.filter
def reason_labels(codes) -> list[str]:
    return [_LABELS.get(code, code) for code in codes or ()]
