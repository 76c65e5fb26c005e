"""``{{ text|markdown }}``: safe HTML from an admin's Markdown (see labeling/markdown.py)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from labeling.markdown import markdown_render

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return markdown_render(text)
