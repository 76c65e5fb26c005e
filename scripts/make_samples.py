"""Build the sample images that `make run` imports (committed under samples/; run again to refresh).

Photos and the fundus image are public-domain / CC0 files that scikit-image ships; the chart is
drawn here with matplotlib from the iris measurements that scikit-learn ships; the screenshot is
headless Chromium rendering a terminal page written here. SOURCES.md records each one.

    python scripts/make_samples.py   # needs the dev extra (scikit-image, scikit-learn, matplotlib)
"""

from __future__ import annotations

import html
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "samples"

PHOTOS = {
    "astronaut.jpg": ("astronaut", "Eileen Collins, NASA; public domain (scikit-image data)"),
    "cat-chelsea.jpg": ("chelsea", "Stefan van der Walt; CC0 (scikit-image data)"),
    "coffee.jpg": ("coffee", "Rachel Michetti; CC0 (scikit-image data)"),
    "rocket.jpg": ("rocket", "SpaceX; public domain (scikit-image data)"),
    "fundus-retina.jpg": (
        "retina",
        "Wikimedia Commons, Fundus photograph of normal left eye; CC0 (scikit-image data)",
    ),
}


def photos() -> list[tuple[str, str]]:
    from skimage import data

    rows = []
    for name, (loader, source) in PHOTOS.items():
        img = Image.fromarray(getattr(data, loader)()).convert("RGB")
        img.thumbnail((800, 800))
        img.save(OUT / name, "JPEG", quality=85, optimize=True)
        rows.append((name, source))
    return rows


def chart() -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_iris

    iris = load_iris()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, name in enumerate(iris.target_names):
        rows = iris.data[iris.target == label]
        ax.scatter(rows[:, 2], rows[:, 3], label=name, s=18)
    ax.set_xlabel("petal length (cm)")
    ax.set_ylabel("petal width (cm)")
    ax.set_title("Iris petals by species")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT / "chart-iris-petals.png")
    plt.close(fig)
    return (
        "chart-iris-petals.png",
        "drawn by scripts/make_samples.py from scikit-learn's iris data; CC0",
    )


TERMINAL = """<!doctype html><html><body style="margin:0;background:#1e1e1e;color:#d4d4d4;
font:15px/1.4 'DejaVu Sans Mono',monospace;padding:14px">
<div style="color:#6a9955"># deploy log</div>
<pre style="margin:0">{}</pre></body></html>"""
LINES = """$ git pull --ff-only
Updating 3f2a1c0..9b7e4d2
Fast-forward
 labeling/services/ingest.py | 42 +++++++++++++++++++++----------
 1 file changed, 28 insertions(+), 14 deletions(-)
$ make test
============================= test session starts ==============================
collected 214 items

tests/labeling/test_ingest.py ................                           [  7%]
tests/labeling/test_zip.py ........                                      [ 11%]
tests/review/test_queue.py ..........F.                                  [ 17%]

FAILED tests/review/test_queue.py::test_lease_expiry - assert 2 == 1
======================== 1 failed, 213 passed in 48.02s ========================
$ """


def screenshot() -> tuple[str, str]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "terminal.html"
        page_file.write_text(TERMINAL.format(html.escape(LINES)))
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(viewport={"width": 900, "height": 420})
            page.goto(page_file.as_uri())
            page.screenshot(path=str(OUT / "screenshot-terminal.png"))
            browser.close()
    return (
        "screenshot-terminal.png",
        "headless Chromium screenshot of a page written by scripts/make_samples.py; CC0",
    )


def main() -> None:
    OUT.mkdir(exist_ok=True)
    rows = photos() + [chart(), screenshot()]
    lines = [
        "# Sample images",
        "",
        "Imported by `make run` into the project `samples`. Rebuilt by",
        "`python scripts/make_samples.py`.",
        "",
        "| file | source and license |",
        "|---|---|",
    ]
    lines += [f"| {name} | {source} |" for name, source in rows]
    (OUT / "SOURCES.md").write_text("\n".join(lines) + "\n")
    subprocess.run(["du", "-sh", str(OUT)], check=False)


if __name__ == "__main__":
    main()
