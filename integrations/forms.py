from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from integrations.models import WebhookEvent


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI export'.")
    username = forms.CharField(
        max_length=150,
        required=False,
        label="For user",
        help_text="Site admins may create a token for someone else; empty means yourself.",
    )

    def __init__(self, *args, can_choose_user: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not can_choose_user:
            del self.fields["username"]

    def clean_username(self):
        username = self.cleaned_data.get("username", "").strip()
        if not username:
            return None
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No active user named {username!r}.")
        return user


EVENT_CHOICES = [(e.value, e.label) for e in WebhookEvent if e != WebhookEvent.TEST]


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=1000, assume_scheme="https", label="Payload URL")
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, label="Events"
    )
