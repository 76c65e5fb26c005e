from __future__ import annotations

from django import forms

from labeling.models import Image, Membership, RiskCategory


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
    username = forms.CharField(max_length=150, help_text="Someone who already has an account.")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


class RoleForm(forms.Form):
    user = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(
        required=False, help_text="The set-password link is sent here when you give no password."
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to let them choose one through a link.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="create", **kwargs)


class InviteForm(forms.Form):
    email = forms.EmailField(help_text="They choose their own username and password.")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="invite", **kwargs)


class InvitationAcceptForm(forms.Form):
    """The invitee chooses a password (and a username, when no account was made for them)."""

    username = forms.CharField(max_length=150, required=False)
    password1 = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, needs_username: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if needs_username:
            self.fields["username"].required = True
            self.fields["username"].widget.attrs["autocomplete"] = "username"
        else:
            del self.fields["username"]

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class GuidelinesForm(forms.Form):
    guidelines = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 16}),
        help_text="Markdown: headings, lists, **bold**, *italic*, links, `code`. "
        "Shown on the review screen's start page and behind the g key.",
    )


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
    risk = forms.ChoiceField(
        required=False,
        label="Risk",
        choices=[("", "Any image"), ("any", "Flagged in any category"), *RiskCategory.choices],
    )
    threshold = forms.BooleanField(
        required=False,
        label="Near the risk threshold",
        help_text="A score within 0.1 of the flag threshold (of the chosen category, or any).",
    )


class ExportForm(forms.Form):
    """What to export; turned into an ExportSpec by the view."""

    format = forms.ChoiceField(
        choices=[
            ("jsonl", "JSON Lines (one caption per line)"),
            ("csv", "CSV (RFC 4180)"),
            ("coco", "COCO captions"),
            ("hf", "Hugging Face imagefolder (zip with images)"),
            ("labelstudio", "Label Studio JSON (image captioning)"),
        ]
    )
    include = forms.ChoiceField(
        choices=[
            ("approved", "Approved captions"),
            ("reviewed", "Every reviewed caption, rejected ones too (JSONL, CSV, Label Studio)"),
        ],
        initial="approved",
    )
    images = forms.ChoiceField(
        choices=[("url", "Referenced by URL"), ("bundle", "Bundled in a zip")],
        initial="url",
        help_text="URLs point at this site's permission-checked image pages.",
    )
    variant = forms.ChoiceField(
        choices=[
            ("display", "Served copy (EXIF and GPS stripped)"),
            ("original", "Original bytes as imported"),
        ],
        initial="display",
        label="Bundled image bytes",
    )
    provenance = forms.BooleanField(
        required=False,
        help_text="Route, model, prompt, cost, latency, every verdict (reviewers as pseudonyms), "
        "adjudication, edit distance and risk flags.",
    )
    parquet = forms.BooleanField(
        required=False, label="Parquet metadata", help_text="Hugging Face only."
    )
    run = forms.IntegerField(required=False, min_value=1, label="Caption run #")
    route = forms.CharField(required=False, max_length=100, label="Route name")
    model = forms.CharField(required=False, max_length=200, label="Model name")
    decided_from = forms.DateField(
        required=False, label="Decided from", widget=forms.DateInput(attrs={"type": "date"})
    )
    decided_to = forms.DateField(
        required=False, label="Decided until", widget=forms.DateInput(attrs={"type": "date"})
    )
    risk = forms.ChoiceField(required=False, choices=[], label="Risk")
    decision = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any decision"),
            ("accepted", "Accepted as-is"),
            ("edited", "Accepted after edit"),
            ("rejected", "Rejected"),
        ],
    )
    batch = forms.IntegerField(required=False, min_value=1, label="Import batch #")

    def __init__(self, *args, **kwargs):
        from review.models import RiskCategory

        super().__init__(*args, **kwargs)
        self.fields["risk"].choices = [
            ("", "Any image"),
            ("any", "Flagged in any risk category"),
            *RiskCategory.choices,
        ]


class PredictionsForm(forms.Form):
    file = forms.FileField(
        widget=forms.ClearableFileInput(attrs={"accept": ".json,.jsonl,.ndjson,.zip"}),
        help_text="Label Studio tasks with predictions (JSON or JSONL), or JSON Lines with image, "
        "caption and model; alone (images by URL) or in a zip with the images it names.",
    )
