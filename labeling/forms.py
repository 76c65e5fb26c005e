from __future__ import annotations

from django import forms

from labeling.models import Image, Membership


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": "image/*", "multiple": True})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, required=False, help_text="Made from the name if empty.")
    caption_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Sent to every model; empty keeps the default.",
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class UploadForm(forms.Form):
    files = MultipleFileField(required=True)


class ZipForm(forms.Form):
    archive = forms.FileField(
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"})
    )


class UrlListForm(forms.Form):
    urls = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "https://example.org/photo.jpg"}),
        help_text="One URL per line; lines starting with # are ignored.",
    )


class ImageFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *Image.Status.choices], required=False)
    batch = forms.IntegerField(required=False, min_value=1)
    near = forms.BooleanField(required=False, label="Near-duplicates only")
