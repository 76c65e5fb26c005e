"""Correction effort: how far the approved text is from the model's, in characters and in words."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Effort:
    char_distance: int
    word_distance: int
    char_effort: float  # char_distance / length of the longer text, 0..1
    word_effort: float  # word_distance / word count of the longer text, 0..1


def levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Edit distance (insert, delete, substitute; cost 1 each) between two sequences.

    Bit-parallel (Hyyrö 2001, after Myers 1999): one pass over `b` with Python ints as bit vectors,
    so a long caption costs len(b) big-int operations instead of len(a) * len(b) steps.
    """
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[Hashable, int] = {}
    for i, token in enumerate(b):
        peq[token] = peq.get(token, 0) | (1 << i)
    full = (1 << m) - 1
    last = 1 << (m - 1)
    pv, mv, score = full, 0, m
    for token in a:
        eq = peq.get(token, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def correction_effort(*, model_text: str, final_text: str) -> Effort:
    before, after = model_text.strip(), final_text.strip()
    chars = levenshtein(before, after)
    before_words, after_words = before.split(), after.split()
    words = levenshtein(before_words, after_words)
    return Effort(
        char_distance=chars,
        word_distance=words,
        char_effort=chars / max(len(before), len(after)) if chars else 0.0,
        word_effort=words / max(len(before_words), len(after_words)) if words else 0.0,
    )
