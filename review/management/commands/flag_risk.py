"""python manage.py flag_risk PATH... [--json] [--caption TEXT] [--threshold CAT=VALUE]

Analyses image files directly; needs no database rows. With ``--json`` it prints one JSON object
per file: ``path``, ``flags`` (categories at or over their threshold), ``scores`` (category ->
0..1), ``reasons`` (category -> short text) and ``version``. A file that cannot be read as an
image gives ``{"path": ..., "error": ...}`` instead and the run goes on; the exit status is
non-zero only when every file failed, so one bad file in a batch does not hide the others.
Folders are walked for files with an image extension.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from review.risk import ANALYSER_VERSION, CATEGORIES, analyse_file, combine

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def _expand(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(
                sorted(
                    f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        else:
            out.append(p)
    return out


def flag_file(
    path: Path, *, captions: list[str], thresholds: dict[str, float] | None
) -> dict[str, Any]:
    """Analyse one file; never raises for a bad file, reports it in ``error``."""
    try:
        report = analyse_file(path)
    except FileNotFoundError:
        return {"path": str(path), "error": "file not found"}
    except IsADirectoryError:
        return {"path": str(path), "error": "not a file"}
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        return {"path": str(path), "error": f"not a readable image: {exc.__class__.__name__}"}
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt files
        return {"path": str(path), "error": f"could not decode image: {exc}"[:200]}
    result = combine(report, captions, thresholds)
    return {
        "path": str(path),
        "flags": result.flags,
        "scores": result.scores,
        "reasons": result.reasons,
        "version": ANALYSER_VERSION,
    }


def _parse_thresholds(values: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values:
        name, _, raw = item.partition("=")
        if name not in CATEGORIES:
            raise CommandError(f"unknown category {name!r} in --threshold (use {CATEGORIES})")
        try:
            value = float(raw)
        except ValueError as exc:
            raise CommandError(f"--threshold {item!r}: value must be a number") from exc
        if not 0.0 <= value <= 1.0:
            raise CommandError(f"--threshold {item!r}: value must be between 0 and 1")
        out[name] = value
    return out


class Command(BaseCommand):
    help = "Score image files for chart, screenshot and medical-looking content."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
        parser.add_argument("--json", action="store_true", help="one JSON object per file")
        parser.add_argument(
            "--caption",
            action="append",
            default=[],
            help="a model caption to combine with the pixels (repeatable)",
        )
        parser.add_argument(
            "--threshold",
            action="append",
            default=[],
            metavar="CATEGORY=VALUE",
            help="flag threshold per category (default 0.5)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        thresholds = _parse_thresholds(options["threshold"])
        files = _expand(options["paths"])
        if not files:
            raise CommandError("no image files found")
        failures = 0
        rows = []
        # progress on stderr, only on a terminal: stdout stays one JSON object per line
        bar = tqdm(files, unit="file", desc="Analysing", file=sys.stderr, disable=None)
        for path in bar:
            row = flag_file(path, captions=options["caption"], thresholds=thresholds)
            failures += "error" in row
            if options["json"]:
                self.stdout.write(json.dumps(row, ensure_ascii=False))
            else:
                rows.append(row)
        bar.close()
        if not options["json"]:
            self._table(rows)
        if failures == len(files):
            raise CommandError(f"none of the {len(files)} file(s) could be analysed")

    def _table(self, rows: list[dict[str, Any]]) -> None:
        width = min(60, max(len(r["path"]) for r in rows))
        head = f"{'path':{width}s}  {'chart':>5s} {'screen':>6s} {'medical':>7s}  flags / reason"
        self.stdout.write(head)
        for r in rows:
            name = r["path"][-width:]
            if "error" in r:
                self.stdout.write(f"{name:{width}s}  error: {r['error']}")
                continue
            s = r["scores"]
            flags = ", ".join(r["flags"]) or "-"
            top = max(CATEGORIES, key=lambda c: s[c])
            self.stdout.write(
                f"{name:{width}s}  {s['chart']:5.2f} {s['screenshot']:6.2f} {s['medical']:7.2f}"
                f"  {flags}: {r['reasons'][top]}"
            )
