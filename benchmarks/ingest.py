"""Ingestion throughput against the bare minimum work on the same files, in one run, on one core.

    python benchmarks/ingest.py [--quick] [-n 600]

Baseline per file: Pillow open + verify + full decode + one 256 px WebP thumbnail + sha256.
captiondesk per file: the real ingestion service (allow-listed decode, sha256, dedupe query,
perceptual hash, near-duplicate scan, storage write, database row, batch counters and item rows)
plus both thumbnails (1024 px JPEG, 256 px WebP), all in this one process. Two paths are measured: a
bulk import (zip, URL list, folder, CLI), which makes the thumbnails from the pixels it decoded
(the headline figure), and a browser upload, whose thumbnails a task makes after commit from the
stored file (a second decode; run inline here). Each pipeline's ratio is against the
baseline's work done on the same files interleaved with it, file by file, so that a shared
machine's changing load weighs on both alike. Images come from files that scikit-image,
scikit-learn and matplotlib ship, cropped and scaled to varied sizes and saved as JPEG, PNG and
WebP.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import sys  # noqa: E402
import tempfile
import time
from pathlib import Path

# benchmarks/queue.py is named like the standard library's queue (which Django and psycopg
# import): load our helpers as benchmarks._common from the repository root, never with this
# folder on the import path.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

from benchmarks._common import django_setup, emit, table  # noqa: E402

GOAL = 0.6


def source_images():
    import matplotlib
    import numpy as np
    import sklearn.datasets
    from PIL import Image
    from skimage import data

    arrays = [
        getattr(data, n)()
        for n in (
            "astronaut",
            "chelsea",
            "coffee",
            "rocket",
            "retina",
            "hubble_deep_field",
            "immunohistochemistry",
        )
    ]
    sk = Path(sklearn.datasets.__file__).parent / "images"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    arrays += [
        np.asarray(Image.open(p).convert("RGB"))
        for p in (sk / "china.jpg", sk / "flower.jpg", mpl / "grace_hopper.jpg")
    ]
    return [Image.fromarray(a).convert("RGB") for a in arrays]


def build_corpus(n: int, folder: Path) -> list[Path]:
    """n distinct files: varied crops, sizes (0.1 to 3 MP) and formats."""
    import random

    from PIL import Image

    rng = random.Random(1234)
    sources = source_images()
    paths = []
    sizes = [
        (480, 320),
        (640, 480),
        (800, 600),
        (1024, 768),
        (1280, 960),
        (1600, 1200),
        (2048, 1536),
    ]
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        target = sizes[rng.randrange(len(sizes))]
        img = src.crop((x, y, x + cw, y + ch)).resize(target, Image.Resampling.BILINEAR)
        fmt = ("JPEG", "JPEG", "JPEG", "PNG", "WEBP")[i % 5]
        path = folder / f"img{i:04d}.{fmt.lower()}"
        img.save(path, fmt, **({"quality": 88} if fmt != "PNG" else {}))
        paths.append(path)
    return paths


def baseline(files: list[bytes]) -> float:

    start = time.perf_counter()
    for data in files:
        baseline_one(data)
    return len(files) / (time.perf_counter() - start)


def baseline_one(data: bytes) -> None:
    from PIL import Image

    Image.open(io.BytesIO(data)).verify()
    img = Image.open(io.BytesIO(data))
    img.load()
    img.thumbnail((256, 256))
    img.save(io.BytesIO(), "WEBP", quality=80, method=2)
    hashlib.sha256(data).hexdigest()


def captiondesk(
    files: list[tuple[str, bytes]], *, bulk: bool, thumbnails: bool = True
) -> tuple[float, float]:
    """All the work per image in this process. ``bulk``: the path a zip, URL list, folder or CLI
    import takes (thumbnails from the pixels ingestion decoded). Otherwise the browser-upload
    path: ingestion in the request, then the thumbnail task (run inline here) decodes again;
    ``thumbnails=False`` measures that request's part alone.

    Returns (images/s, baseline images/s), the baseline's work done on each file interleaved
    with ours (before ours on even files, after on odd ones), so that the machine's load, which
    on a shared machine changes from second to second, weighs on both alike."""
    from labeling.models import Image, ImportBatch, Project
    from labeling.services import derivatives, ingest

    queued: list[int] = []
    real_after_import = ingest._after_import
    # Nothing leaves this process: thumbnail and risk tasks are recorded, not sent.
    ingest._after_import = lambda image_id, *, thumbnails=True: (
        queued.append(image_id) if thumbnails else None
    )
    project = Project.objects.create(
        name="bench ingest", slug=f"bench-ingest-{os.getpid()}-{time.time_ns()}"
    )
    try:
        batch = ingest.batch_create(project=project, kind=ImportBatch.Kind.PATH)
        base_s = 0.0

        def timed_baseline(data: bytes) -> None:
            nonlocal base_s
            started = time.perf_counter()
            baseline_one(data)
            base_s += time.perf_counter() - started

        def candidates():
            for i, (n, d) in enumerate(files):
                if i % 2 == 0:
                    timed_baseline(d)
                yield ingest.Candidate(source=n, name=n, origin="path", data=d)
                if i % 2 == 1:
                    timed_baseline(d)

        start = time.perf_counter()
        imported = 0
        for outcome in ingest.batch_ingest(
            batch=batch, candidates=candidates(), thumbnails_inline=bulk
        ):
            imported += outcome.status == "imported"
            if queued and thumbnails:
                derivatives.image_make_derivatives(image=Image.objects.get(pk=queued.pop()))
        elapsed = time.perf_counter() - start - base_s
        assert imported == len(files), f"only {imported} of {len(files)} imported"
        missing = Image.objects.filter(project=project, thumb_large="").count()
        assert missing == (0 if thumbnails else len(files)), f"{missing} without thumbnails"
        return len(files) / elapsed, len(files) / base_s
    finally:
        ingest._after_import = real_after_import
        project.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 images")
    parser.add_argument("-n", type=int, default=600)
    args = parser.parse_args()
    n = 60 if args.quick else args.n

    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for both sides
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    os.environ["MEDIA_ROOT"] = str(work / "media")
    django_setup()
    try:
        paths = build_corpus(n, work)
        files = [(p.name, p.read_bytes()) for p in paths]
        from PIL import Image

        megapixels = sum(w * h for w, h in (Image.open(p).size for p in paths)) / 1e6
        baseline([d for _, d in files[:10]])  # warm-up: imports, codec set-up
        base = baseline([d for _, d in files])
        ours, ours_base = captiondesk(files, bulk=True)
        upload, upload_base = captiondesk(files, bulk=False)
        request, request_base = captiondesk(files, bulk=False, thumbnails=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{n} images, {megapixels / n:.2f} MP on average, one core\n")
    print(
        table(
            ["pipeline", "images/s", "baseline images/s", "vs baseline"],
            [
                ["baseline alone (open+verify+decode+thumbnail+sha256)", f"{base:.1f}", "", ""],
                [
                    "bulk import (zip/URL/CLI): ingest + 2 thumbnails",
                    f"{ours:.1f}",
                    f"{ours_base:.1f}",
                    f"{ours / ours_base:.2f}",
                ],
                [
                    "browser upload: ingest, then thumbnail task",
                    f"{upload:.1f}",
                    f"{upload_base:.1f}",
                    f"{upload / upload_base:.2f}",
                ],
                [
                    "  its request alone (no thumbnails)",
                    f"{request:.1f}",
                    f"{request_base:.1f}",
                    f"{request / request_base:.2f}",
                ],
            ],
        )
    )
    print("(each pipeline against the baseline's work interleaved with it, file by file)")
    emit(
        "ingest",
        value=ours,
        baseline=ours_base,
        unit="images/s",
        goal=f">= {GOAL} of baseline",
        images=n,
        baseline_alone_images_per_s=round(base, 2),
        upload_path_images_per_s=round(upload, 2),
        upload_path_ratio=round(upload / upload_base, 3),
        request_only_images_per_s=round(request, 2),
        request_only_ratio=round(request / request_base, 3),
    )


if __name__ == "__main__":
    main()
