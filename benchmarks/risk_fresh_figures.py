"""Neuroimaging figures the risk set does not have, and photographs laid out the same way.

    python benchmarks/risk_fresh_figures.py [--out var/risk_fresh] [--against 255af80]

Needs the ``riskset`` extra (nilearn draws the figures) beside ``dev`` (scikit-image,
matplotlib): ``pip install -e ".[dev,riskset]"``.

A check of one change on pictures nobody looked at while making it. ``risk-2.5`` raised the
weight of ``analyser.scan_views`` (views of a symmetric scan on black) after seeing how the
``nilearn-plotting`` figures of the risk set were missed; those figures cannot then say how the
change does on figures it was not made for. This script draws others with nilearn's bundled
data (display modes, colour maps and overlays the set's ten do not use) and, as controls,
photographs side by side on black the way such figures lay out their views, and prints the
analyser's decision for each from the pixels alone (saved without matplotlib's metadata).
``--against REF`` also scores them with the analyser as committed at git ``REF``, in the same
run (``risk_eval.analyser_at``).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402


def _figures():
    """(name, truth, draw(fig)) for every picture; nilearn and scikit-image draw them."""
    import nilearn
    import numpy as np
    from nilearn import image, plotting
    from skimage import data as skdata

    data = Path(nilearn.__file__).parent / "datasets" / "data"
    stat = str(data / "image_10426.nii.gz")
    t1 = str(data / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    wm = str(data / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz")
    gm = str(data / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")
    wm_mask = image.math_img("(img > 0.5) * 1 + (img > 0.8) * 2", img=wm)
    medical = [
        ("stat_map-y-cold_hot", lambda f: plotting.plot_stat_map(
            stat, bg_img=t1, display_mode="y", cut_coords=4, cmap="cold_hot", figure=f,
            threshold=2.0)),
        ("stat_map-ortho-viridis", lambda f: plotting.plot_stat_map(
            stat, bg_img=t1, cmap="viridis", figure=f, threshold=1.0, black_bg=True)),
        ("stat_map-yz", lambda f: plotting.plot_stat_map(
            stat, bg_img=t1, display_mode="yz", figure=f, threshold=3.0)),
        ("roi-y-autumn", lambda f: plotting.plot_roi(
            wm_mask, bg_img=t1, display_mode="y", cut_coords=3, cmap="autumn", figure=f)),
        ("roi-ortho-set1", lambda f: plotting.plot_roi(
            wm_mask, bg_img=t1, cmap="Set1", figure=f, alpha=0.6)),
        ("anat-y", lambda f: plotting.plot_anat(t1, display_mode="y", cut_coords=3, figure=f)),
        ("anat-ortho-dim", lambda f: plotting.plot_anat(t1, figure=f, dim=0.5)),
        ("img-viridis", lambda f: plotting.plot_img(wm, cmap="viridis", figure=f,
                                                     black_bg=True)),
        ("epi-z-inferno", lambda f: plotting.plot_epi(gm, display_mode="z", cut_coords=3,
                                                      cmap="inferno", figure=f)),
        ("img-y-magma", lambda f: plotting.plot_img(t1, display_mode="y", cut_coords=4,
                                                     cmap="magma", figure=f, black_bg=True)),
    ]  # fmt: skip

    def panels(images):
        def draw(fig):
            fig.set_facecolor("black")
            for k, im in enumerate(images):
                ax = fig.add_subplot(1, len(images), k + 1)
                ax.imshow(im, cmap="gray" if np.ndim(im) == 2 else None)
                ax.set_axis_off()

        return draw

    photos = [
        ("photos-astronaut-coffee-chelsea", panels([skdata.astronaut(), skdata.coffee(),
                                                    skdata.chelsea()])),
        ("photos-grey-camera-moon", panels([skdata.camera(), skdata.moon()])),
        ("photos-rocket-hubble", panels([skdata.rocket(), skdata.hubble_deep_field()])),
        ("photos-grey-coins-grass-gravel", panels([skdata.coins(), skdata.grass(),
                                                  skdata.gravel()])),
        ("photo-motorcycle-left", panels([skdata.stereo_motorcycle()[0]])),
        ("photos-grey-rocket-brick", panels([skdata.rocket().mean(axis=2), skdata.brick()])),
    ]  # fmt: skip
    return [(n, "medical", d) for n, d in medical] + [(n, "photo", d) for n, d in photos]


def render(out: Path) -> list[tuple[str, str, Path]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    done = []
    for i, (name, truth, draw) in enumerate(_figures()):
        path = out / f"{name}.png"
        if not path.exists():
            fig = plt.figure(figsize=(7 + (i % 3), 3 + 0.5 * (i % 2)), dpi=(72, 100)[i % 2])
            draw(fig)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
            plt.close("all")
            # pixels only: matplotlib names itself in the file, which the analyser reads as a
            # chart's metadata; the set's pictures carry none either
            Image.open(io.BytesIO(buf.getvalue())).convert("RGB").save(path)
        done.append((name, truth, path))
    return done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "var" / "risk_fresh"))
    ap.add_argument("--against", help="a git ref whose analyser scores the pictures too")
    args = ap.parse_args()
    from benchmarks import risk_eval
    from review.risk import ANALYSER_VERSION, analyse

    versions = {ANALYSER_VERSION: analyse}
    if args.against:
        versions[args.against] = risk_eval.analyser_at(args.against)
    right = {v: {"medical": 0, "photo": 0} for v in versions}
    total = {"medical": 0, "photo": 0}
    for name, truth, path in render(Path(args.out)):
        total[truth] += 1
        line = f"{truth:8s} {name:34s}"
        for version, score in versions.items():
            with Image.open(path) as img:
                scores = score(img).scores
            decided = risk_eval.decided(scores)
            right[version][truth] += decided == truth
            ps = " ".join(f"{c[:3]}={scores[c]:.2f}" for c in risk_eval.CATEGORIES)
            line += f" | {version}: {ps} -> {decided}"
        print(line)
    for version, ok in right.items():
        print(
            f"{version}: medical figures read as medical {ok['medical']}/{total['medical']}; "
            f"photographs in panels on black unflagged {ok['photo']}/{total['photo']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
