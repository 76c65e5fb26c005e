"""Forms of the routing pages: routes, chains and rules, run launch and budget."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from labeling.models import Image, Project, RiskCategory
from routing.models import CaptionRun, Chain, Route
from routing.services.config import max_deadline_s

MAX_FALLBACKS = 4
MAX_BUDGET_USD = Decimal("999999")
# Parameters are a few flat keys; deeper nesting is an attack on the parser and on every page
# that renders them (5000 levels raised RecursionError).
MAX_JSON_DEPTH = 20
MAX_JSON_CHARS = 20_000


def _json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


class JSONObjectField(forms.CharField):
    """A JSON object typed into a textarea; empty means {} (or None with ``allow_none``)."""

    def __init__(self, *, allow_none: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
        self.allow_none = allow_none
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=1) if value else ""
        return value

    def clean(self, value: Any) -> Any:
        text = super().clean(value).strip()
        if not text:
            return None if self.allow_none else {}
        if len(text) > MAX_JSON_CHARS:
            raise ValidationError(f"At most {MAX_JSON_CHARS:,} characters of JSON.")
        try:
            parsed = json.loads(text)
        except RecursionError as exc:
            raise ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels.") from exc
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON: {exc}") from exc
        if _json_depth(parsed) > MAX_JSON_DEPTH:
            raise ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
        if not isinstance(parsed, dict):
            raise ValidationError('Enter a JSON object, e.g. {"max_new_tokens": 40}.')
        return parsed


class RouteForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="Overrides the provider's base URL from the environment.",
    )
    params = JSONObjectField(help_text='Default decoding parameters, e.g. {"max_new_tokens": 40}.')
    config = JSONObjectField(
        help_text='Provider options, e.g. {"version": "…"} (Replicate), '
        '{"fallbacks": ["google/gemini-2.5-flash"]} (Eden AI), {"batch_size": 8} (local).'
    )

    class Meta:
        model = Route
        fields = [
            "name",
            "provider",
            "model",
            "params",
            "config",
            "timeout_s",
            "max_attempts",
            "enabled",
            "usd_per_call",
            "usd_per_second",
            "gpu_hour_usd",
            "usd_per_1k_input_tokens",
            "usd_per_1k_output_tokens",
            "expected_seconds",
            "base_url",
        ]

    #: Which price fields each provider's cost uses (the form shows those; the rest stay empty).
    PRICES_BY_PROVIDER: dict[str, tuple[str, ...]] = {
        Route.Provider.EDENAI: (
            "usd_per_1k_input_tokens",
            "usd_per_1k_output_tokens",
            "usd_per_call",
        ),
        Route.Provider.EDENAI_V2: ("usd_per_call",),
        Route.Provider.REPLICATE: ("usd_per_second", "usd_per_call"),
        Route.Provider.OLLAMA: ("gpu_hour_usd",),
        Route.Provider.LOCAL: ("gpu_hour_usd",),
    }
    LABELS: dict[str, tuple[str, str]] = {
        "usd_per_call": ("Price per call", "USD per call, when the vendor reports no cost."),
        "usd_per_second": ("Price per second", "USD per second of vendor hardware (Replicate)."),
        "gpu_hour_usd": ("GPU price", "USD per GPU hour, so local routes compare with hosted."),
        "usd_per_1k_input_tokens": ("Input tokens", "USD per 1,000 input tokens."),
        "usd_per_1k_output_tokens": ("Output tokens", "USD per 1,000 output tokens."),
        "timeout_s": ("Timeout (s)", "Seconds one attempt may take."),
        "expected_seconds": ("Typical seconds", "Per call, for estimates before any call."),
    }
    BASIC = (
        "name",
        "provider",
        "model",
        "enabled",
        "timeout_s",
        "max_attempts",
        "expected_seconds",
    )
    ADVANCED = ("params", "config", "base_url")

    def __init__(self, *args: Any, allow_base_url: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not allow_base_url:
            # Pointing a route at an arbitrary host is a site admin's decision.
            del self.fields["base_url"]
        for name, (label, help_text) in self.LABELS.items():
            self.fields[name].label, self.fields[name].help_text = label, help_text

    def _group(self, names: tuple[str, ...]) -> list[Any]:
        return [self[name] for name in names if name in self.fields]

    def basic_fields(self) -> list[Any]:
        return self._group(self.BASIC)

    def advanced_fields(self) -> list[Any]:
        return self._group(self.ADVANCED)

    def price_fields(self) -> list[tuple[Any, str]]:
        """(bound field, space-separated providers that use it), for the form to show per
        provider."""
        names = (
            "usd_per_1k_input_tokens",
            "usd_per_1k_output_tokens",
            "usd_per_second",
            "gpu_hour_usd",
            "usd_per_call",
        )
        return [
            (
                self[name],
                " ".join(p for p, used in self.PRICES_BY_PROVIDER.items() if name in used),
            )
            for name in names
        ]

    @classmethod
    def keep_omitted(cls, data: Any, route: Route) -> Any:
        """``data`` with the route's stored value for every field it does not carry, so an edit
        that sends some fields never wipes the others (prices above all). A checkbox is the
        exception: browsers omit unticked ones, so ``enabled`` absent means unticked."""
        merged = data.copy()
        current = cls(instance=route, allow_base_url=True)
        for name, field in current.fields.items():
            if name in merged or isinstance(field, forms.BooleanField):
                continue
            value = current.initial.get(name)
            if value is None:
                continue
            merged[name] = field.prepare_value(value) if hasattr(field, "prepare_value") else value
        return merged

    def clean_timeout_s(self) -> float:
        value = self.cleaned_data["timeout_s"]
        if not 0 < value <= max_deadline_s():
            raise ValidationError(f"Between 0 and {max_deadline_s():g} seconds.")
        return value

    def clean_max_attempts(self) -> int:
        value = self.cleaned_data["max_attempts"]
        if not 1 <= value <= 10:
            raise ValidationError("Between 1 and 10.")
        return value


class ChainForm(forms.Form):
    name = forms.CharField(max_length=100)
    deadline_s = forms.FloatField(
        initial=120.0, label="Deadline (s)", help_text="For one caption, every attempt included."
    )
    is_default = forms.BooleanField(required=False, label="Default chain of the project")
    primary = forms.ModelChoiceField(queryset=Route.objects.none(), label="Primary route")

    def __init__(self, *args: Any, chain: Chain | None = None, **kwargs: Any) -> None:
        if chain is not None and "initial" not in kwargs:
            routes = [step.route for step in chain.steps.select_related("route")]
            initial: dict[str, Any] = {
                "name": chain.name,
                "deadline_s": chain.deadline_s,
                "is_default": chain.is_default,
            }
            for i, route in enumerate(routes):
                initial["primary" if i == 0 else f"fallback_{i}"] = route.pk
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        routes_qs = Route.objects.order_by("name")
        self.fields["primary"].queryset = routes_qs
        for i in range(1, MAX_FALLBACKS + 1):
            self.fields[f"fallback_{i}"] = forms.ModelChoiceField(
                queryset=routes_qs, required=False, label=f"Fallback {i}"
            )

    def routes(self) -> list[Route]:
        chosen = [self.cleaned_data["primary"]]
        chosen += [
            self.cleaned_data[f"fallback_{i}"]
            for i in range(1, MAX_FALLBACKS + 1)
            if self.cleaned_data.get(f"fallback_{i}")
        ]
        return chosen

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("primary"):
            ids = [r.pk for r in self.routes()]
            if len(set(ids)) != len(ids):
                raise ValidationError("A route can appear only once in a chain.")
        return data


class ChainRuleForm(forms.Form):
    category = forms.ChoiceField(
        choices=[("", "Any flagged risk"), *RiskCategory.choices], required=False
    )
    min_score = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.0)
    chain = forms.ModelChoiceField(queryset=Chain.objects.none())

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["chain"].queryset = Chain.objects.filter(project=project)


class RunForm(forms.Form):
    kind = forms.ChoiceField(choices=CaptionRun.Kind.choices, widget=forms.RadioSelect)
    chain = forms.ModelChoiceField(queryset=Chain.objects.none(), required=False)
    apply_rules = forms.BooleanField(
        required=False, initial=True, label="Send risky images to the chain their rule names"
    )
    routes = forms.ModelMultipleChoiceField(
        queryset=Route.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Comparison: each route captions each image with the same prompt.",
    )
    selection = forms.ChoiceField(
        choices=CaptionRun.Selection.choices, initial="all", widget=forms.RadioSelect
    )
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Image.Status.choices], required=False, label="Image status"
    )
    risk = forms.ChoiceField(
        choices=[
            ("", "Any"),
            ("flagged", "Flagged as risky"),
            ("unflagged", "Not flagged"),
            *RiskCategory.choices,
        ],
        required=False,
        label="Risk",
    )
    sample_size = forms.IntegerField(min_value=1, required=False, label="Sample size")
    seed = forms.IntegerField(required=False, initial=0, label="Sample seed")
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    params = JSONObjectField(
        label="Parameters", help_text='Same for every route, e.g. {"max_new_tokens": 40}.'
    )
    json_schema = JSONObjectField(allow_none=True, label="JSON schema (structured JSON projects)")
    budget_usd = forms.DecimalField(
        min_value=Decimal("0.000001"),
        # the column keeps 6 digits before the point (max_digits 14, 8 decimals)
        max_value=MAX_BUDGET_USD,
        max_digits=14,
        decimal_places=6,
        required=False,
        label="Budget cap (USD)",
    )
    use_cache = forms.BooleanField(
        required=False, initial=True, label="Reuse cached answers to identical requests"
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["chain"].queryset = Chain.objects.filter(project=project)
        self.fields["routes"].queryset = Route.objects.filter(enabled=True).order_by("name")
        if not self.is_bound:
            default = Chain.objects.filter(project=project, is_default=True).first()
            self.initial.setdefault("kind", "chain" if default else "comparison")
            self.initial.setdefault("chain", default.pk if default else None)
            self.initial.setdefault("prompt", project.caption_prompt)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == CaptionRun.Kind.CHAIN and not data.get("chain"):
            self.add_error("chain", "Choose a chain (or make a comparison run).")
        if data.get("kind") == CaptionRun.Kind.COMPARISON and not data.get("routes"):
            self.add_error("routes", "Choose at least one route.")
        if data.get("selection") == CaptionRun.Selection.SAMPLE and not data.get("sample_size"):
            self.add_error("sample_size", "How many images should the sample have?")
        if self.project.task_type == Project.TaskType.JSON and not data.get("json_schema"):
            self.add_error("json_schema", "This project asks for structured JSON: give a schema.")
        return data


class BudgetForm(forms.Form):
    budget_usd = forms.DecimalField(
        min_value=Decimal("0.000001"),
        # the column keeps 6 digits before the point (max_digits 14, 8 decimals)
        max_value=MAX_BUDGET_USD,
        max_digits=14,
        decimal_places=6,
        required=False,
        label="Budget cap (USD)",
    )


class RouteTestForm(forms.Form):
    """What a route test asks the route about: an uploaded image, else a bundled sample."""

    sample = forms.ChoiceField(
        label="Sample image", required=False, help_text="Used when no file is chosen."
    )
    image = forms.FileField(
        label="Or your own image", required=False, help_text="JPEG, PNG, WebP, GIF, TIFF or BMP."
    )

    def __init__(self, *args: Any, samples: list[str], default: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sample"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(name, name) for name in samples]
        field.initial = default if default in samples else (samples[0] if samples else None)
        self.fields["image"].widget.attrs["accept"] = "image/*"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("image") and not data.get("sample"):
            raise ValidationError("Choose a sample image or a file.")
        return data
