"""Risk flags: find charts, screenshots and medical-looking images (pure Pillow/NumPy)."""

from __future__ import annotations

from .analyser import ANALYSER_VERSION, CATEGORIES, RiskReport, analyse, analyse_file
from .captions import DEFAULT_THRESHOLD, RiskFlags, caption_signal, combine

__all__ = [
    "ANALYSER_VERSION",
    "CATEGORIES",
    "DEFAULT_THRESHOLD",
    "RiskFlags",
    "RiskReport",
    "analyse",
    "analyse_file",
    "caption_signal",
    "combine",
]
