"""Where files come from: folders, zip archives, URL lists. Each yields `Candidate`s lazily.

Nothing here writes to the database; reading problems become candidates with an `error`, so the
batch records them as rejected files instead of stopping.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from labeling.models import Image
from labeling.safe_fetch import FetchError, fetch

from .ingest import Candidate

ZIP_SUFFIXES = (".zip",)
_SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def _skippable(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (
        parts[-1] in _SKIP_NAMES
        or parts[-1].startswith("._")
        or "__MACOSX" in parts
        or any(p.startswith(".") and p not in (".", "..") for p in parts)
    )


def zip_candidates(
    fileobj: BinaryIO | str | os.PathLike[str], *, label: str
) -> Iterator[Candidate]:
    """Members of a zip archive, read into memory one at a time with hard limits.

    Zip-slip cannot happen: member names are never used as paths, only shown. Zip bombs are
    refused from the central directory (declared sizes, compression ratio, member count) and again
    while reading, because declared sizes can lie.
    """
    max_bytes = settings.INGEST_MAX_BYTES
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield Candidate(
            source=label,
            name=label,
            origin=Image.Source.ZIP,
            error=f"not a readable zip archive: {exc}",
        )
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _skippable(m.filename)]
        if len(members) > settings.ZIP_MAX_MEMBERS:
            yield Candidate(
                source=label,
                name=label,
                origin=Image.Source.ZIP,
                error=f"archive has {len(members):,} files (limit {settings.ZIP_MAX_MEMBERS:,})",
            )
            return
        declared_total = 0
        for info in members:
            source = f"{label}:{info.filename}"
            cand = dict(source=source, name=info.filename, origin=Image.Source.ZIP)
            if info.flag_bits & 0x1:
                yield Candidate(**cand, error="encrypted zip member")
                continue
            if info.filename.lower().endswith(ZIP_SUFFIXES):
                yield Candidate(
                    **cand, error="nested archive: unzip it first or upload it separately"
                )
                continue
            if info.file_size > max_bytes:
                yield Candidate(
                    **cand, error=f"file too large: {info.file_size:,} bytes (limit {max_bytes:,})"
                )
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1_000_000 and ratio > settings.ZIP_MAX_RATIO:
                yield Candidate(
                    **cand,
                    error=(
                        f"zip bomb refused: compression ratio {ratio:,.0f}:1 "
                        f"(limit {settings.ZIP_MAX_RATIO}:1)"
                    ),
                )
                continue
            declared_total += info.file_size
            if declared_total > settings.ZIP_MAX_TOTAL_BYTES:
                yield Candidate(
                    **cand, error="zip bomb refused: archive expands beyond the total size limit"
                )
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(max_bytes + 1)
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                NotImplementedError,
                RuntimeError,
                ValueError,
            ) as exc:
                yield Candidate(**cand, error=f"unreadable zip member: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. zlib.error on corrupt deflate streams
                yield Candidate(
                    **cand, error=f"unreadable zip member: {exc.__class__.__name__}: {exc}"
                )
                continue
            if len(data) > max_bytes:
                yield Candidate(
                    **cand, error="zip bomb refused: member expands beyond its declared size"
                )
                continue
            yield Candidate(**cand, data=data)


def path_candidates(paths: list[str]) -> Iterator[Candidate]:
    """Files, folders (recursively, sorted) and zip archives given on the command line."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if not _skippable(str(child.relative_to(path))):
                    yield from _file_candidates(child)
        elif path.is_file():
            yield from _file_candidates(path)
        else:
            yield Candidate(
                source=raw, name=path.name, origin=Image.Source.PATH, error="no such file or folder"
            )


def _file_candidates(path: Path) -> Iterator[Candidate]:
    if path.suffix.lower() in ZIP_SUFFIXES:
        yield from zip_candidates(str(path), label=str(path))
        return
    try:
        size = path.stat().st_size
        if size > settings.INGEST_MAX_BYTES:
            yield Candidate(
                source=str(path),
                name=path.name,
                origin=Image.Source.PATH,
                error=f"file too large: {size:,} bytes (limit {settings.INGEST_MAX_BYTES:,})",
            )
            return
        data = path.read_bytes()
    except OSError as exc:
        yield Candidate(
            source=str(path),
            name=path.name,
            origin=Image.Source.PATH,
            error=f"unreadable: {exc.strerror or exc}",
        )
        return
    yield Candidate(source=str(path), name=path.name, origin=Image.Source.PATH, data=data)


def parse_url_list(text: str) -> list[str]:
    urls = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(line)
    return urls


def url_candidates(urls: list[str]) -> Iterator[Candidate]:
    for url in urls:
        name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or url
        try:
            data = fetch(url)
        except FetchError as exc:
            yield Candidate(source=url, name=name, origin=Image.Source.URL, error=str(exc))
            continue
        yield Candidate(source=url, name=name, origin=Image.Source.URL, data=data)
