"""Local BLIP-2 throughput: images per second at batch sizes 1, 8 and 32, through the real worker
code (``LocalProvider.caption_batch``: image decode, processor, batched ``generate()``, decode).

    python benchmarks/gpu_batch.py [--quick] [--images N] [--new-tokens T]

With CUDA: BLIP-2 at the full ``Salesforce/blip2-opt-2.7b`` size (ViT-g + Q-Former + OPT-2.7b,
about 3.7B parameters) with random weights built from the config, in fp16 (real compute, no
download). Without CUDA: a tiny random BLIP-2 on the CPU, and the output says so; those figures
say nothing about a GPU. Baseline = batch size 1 (one image at a time). Every image generates
exactly ``--new-tokens`` tokens (min = max), so each batch size does the same work per image.
No database is used.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

# benchmarks/queue.py is named like the standard library's queue (which torch imports): load our
# helpers as benchmarks._common from the repository root, never with this folder on the path.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

from benchmarks._common import emit, table  # noqa: E402

BATCH_SIZES = (1, 8, 32)
GOAL = "higher is better: images/s at batch 32 over one image at a time (no target set)"


def make_images(count: int, size: tuple[int, int]) -> list[bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1234)
    images = []
    for _ in range(count):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def build(full: bool) -> tuple[object, str]:
    import torch

    from routing.providers.local import LocalProvider
    from routing.providers.tiny import build_blip2_opt_2_7b, build_tiny

    if full:
        model, processor = build_blip2_opt_2_7b(dtype=torch.float16, device="cuda")
        params = sum(p.numel() for p in model.parameters())
        label = f"BLIP-2 OPT-2.7b size, random weights, fp16, {params / 1e9:.2f}B parameters"
        device = "cuda"
    else:
        model, processor = build_tiny("blip2")
        label = "TINY random BLIP-2 on CPU (52k parameters) - NOT a GPU figure"
        device = "cpu"
    provider = LocalProvider.from_components(
        model=model,
        processor=processor,
        family="blip2",
        model_id="blip2-opt-2.7b-random" if full else "tiny-blip2",
        device=device,
        max_batch_size=max(BATCH_SIZES),
    )
    return provider, label


def measure(provider: object, images: list[bytes], batch: int, new_tokens: int) -> dict[str, float]:
    import torch

    from routing.providers import CaptionRequest, CaptionResult, MalformedOutput, ProviderError

    params = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    requests = [CaptionRequest(image=data, params=params, timeout_s=600) for data in images]
    chunks = [requests[i : i + batch] for i in range(0, len(requests), batch)]
    provider.caption_batch(chunks[0])  # type: ignore[attr-defined]  # warm-up at this shape
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    done = 0
    empty = 0
    for chunk in chunks:
        for outcome in provider.caption_batch(chunk):  # type: ignore[attr-defined]
            if isinstance(outcome, CaptionResult):
                done += 1
            elif isinstance(outcome, MalformedOutput):
                empty += 1  # random weights may decode to nothing; the work was done all the same
            elif isinstance(outcome, ProviderError):
                raise SystemExit(f"batch {batch}: {outcome.error_class}: {outcome}")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    return {
        "images": len(requests),
        "seconds": seconds,
        "images_per_s": len(requests) / seconds,
        "captions": done,
        "empty": empty,
        "peak_gib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images, well under a minute")
    parser.add_argument("--images", type=int, default=None, help="images per batch size")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens generated per image")
    args = parser.parse_args()

    import torch

    full = torch.cuda.is_available()
    images_n = args.images or (32 if args.quick else 128)
    images_n = max(images_n, max(BATCH_SIZES))
    new_tokens = args.new_tokens or (8 if args.quick else 30)
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    provider, label = build(full)
    gpu = torch.cuda.get_device_name(0) if full else "none (CPU)"
    print(f"model: {label}")
    print(f"device: {gpu}; torch {torch.__version__}")
    print(f"{images_n} images (random 640x480 JPEG) per batch size, {new_tokens} new tokens each")
    if not full:
        print("NOTE: no CUDA device here, so these are CPU / tiny-model figures only.")
    results = {
        batch: measure(provider, make_images(images_n, (640, 480)), batch, new_tokens)
        for batch in BATCH_SIZES
    }
    baseline = results[1]["images_per_s"]
    rows = [
        [
            batch,
            r["images"],
            f"{r['seconds']:.2f}",
            f"{r['images_per_s']:.2f}",
            f"{r['images_per_s'] / baseline:.2f}x",
            f"{r['peak_gib']:.1f}" if full else "-",
        ]
        for batch, r in results.items()
    ]
    print(table(["batch", "images", "seconds", "images/s", "vs batch 1", "peak GiB"], rows))
    emit(
        "gpu_batch",
        value=results[32]["images_per_s"],
        baseline=baseline,
        unit="images/s",
        goal=GOAL,
        device=gpu,
        model=label,
        tiny_cpu=not full,
        new_tokens=new_tokens,
        images_per_s={str(b): round(r["images_per_s"], 3) for b, r in results.items()},
        batch8_ratio=round(results[8]["images_per_s"] / baseline, 3),
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
