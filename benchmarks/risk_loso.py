"""Leave-one-source-out alone, fast: for trying a change to the risk analyser.

    python benchmarks/risk_loso.py [--devset var/risk_devset] [--misses] [--jobs 2]
                                   [--groups qt-doc,xvfb-qt] [--no-lit-box]
                                   [--views-weight 3.0]

``risk_eval.py`` prints everything (both splits, captions, timing); this prints only its
leave-one-source-out figures: recall per category, photos flagged, the confusion matrix, exact
share per source, how far each kind of picture reaches on two measures (``lit_box``,
``scan_views``) and, with ``--misses``, the wrong decisions (``--groups``: of those sources
only). Every image's analysis is cached under ``var/loso_cache/<hash of review/risk>.pkl``, so
a second run after changing only the fit, or nothing, takes seconds;
``benchmarks/risk_fit_variants.py`` reads the same cache. ``--jobs`` analyses in parallel.
Two changes to the analysis, alone or together, each run with its own cache and the model
refitted per source as always: ``--no-lit-box`` holds ``features.lit_box`` at 0 (what
``risk-2.4`` added), ``--views-weight W`` sets ``analyser.VIEWS_WEIGHT`` (``risk-2.4``: 3.0;
``risk-2.5``: 5.0). Both, ``--no-lit-box --views-weight 3``, give the ``risk-2.3`` analysis.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import sys
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/queue.py would shadow the standard library's queue (scikit-learn imports it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402


def code_hash() -> str:
    h = hashlib.sha1()
    for p in sorted((ROOT / "review" / "risk").glob("*")):
        if p.suffix in (".py", ".json"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def work(args):
    devset, file, variant = args  # variant: what ``analysed`` names
    from review.risk import analyse, analyser, features, learned
    from review.risk.analyser import learned_inputs, metadata_hints, training_inputs

    for change in filter(None, variant.split("+")):
        if change == "no-lit-box":  # the analysis as it was before ``lit_box`` (risk-2.4)
            features._lit_box = lambda luma, bw: 0.0
        elif change.startswith("views-weight="):
            analyser.VIEWS_WEIGHT = float(change.split("=", 1)[1])
        else:
            raise ValueError(f"unknown change to the analysis: {change}")

    with Image.open(Path(devset) / file) as img:
        report = analyse(img, with_features=True)
        hand = analyse(img, use_model=False) if learned.shipped_model() else report
        meta = metadata_hints(img)
        inputs = learned_inputs(report) if report.features else None
        # [as built, degraded copy]: what the model trains on
        train_inputs = training_inputs(img, as_built=inputs)
    return file, {
        "report": report,
        "hand": hand,
        "meta": meta,
        "inputs": inputs,
        "train_inputs": train_inputs,
    }


def analysed(devset: Path, rows: list[dict], jobs: int, variant: str = "") -> dict[str, dict]:
    """Every row's analysis (``work``), from ``var/loso_cache/<hash of review/risk>.pkl`` where
    this code version already made it. ``variant``: changes joined by ``+``, ``no-lit-box``
    (``features.lit_box`` held at 0) and ``views-weight=W`` (``analyser.VIEWS_WEIGHT`` set to
    W); each variant has its own cache."""
    cache_dir = ROOT / "var" / "loso_cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / f"{code_hash()}{'-' + variant if variant else ''}.pkl"
    cache = pickle.loads(cache_file.read_bytes()) if cache_file.exists() else {}
    todo = [r["file"] for r in rows if r["file"] not in cache]
    if todo:
        with Pool(jobs) as pool:
            jobs_args = [(str(devset), f, variant) for f in todo]
            for file, res in pool.imap_unordered(work, jobs_args, 8):
                cache[file] = res
        cache_file.write_bytes(pickle.dumps(cache))
    return cache


def with_copies(
    devset: Path, jobs: int, without: frozenset[str] = frozenset()
) -> tuple[list[dict], list[str], dict[str, list]]:
    """Every row with its analysis (``analysed``), each row's source group, and the learned
    inputs to test on by kind: ``f`` as built, ``d`` the degraded copy (``train_inputs[1]``;
    ``None`` for a picture too small to measure), both with the original file's metadata.
    ``without``: source groups left out of the set altogether (the set as it was before they
    were added)."""
    from benchmarks import risk_eval

    rows = risk_eval.load_rows(devset, quick=False)
    rows = [r for r in rows if risk_eval.row_group(r) not in without]
    cache = analysed(devset, rows, jobs)
    rows = [r | cache[r["file"]] for r in rows]
    groups = [risk_eval.row_group(r) for r in rows]
    tests = {"f": [r["inputs"] for r in rows], "d": [(r["train_inputs"] + [None])[1] for r in rows]}
    return rows, groups, tests


def decisions_left_out(rows, groups, tests, fits, fitted, score) -> dict:
    """``{(fit name, kind): decision per row}``: for every source, each fit of ``fits`` (name
    first) is made by ``fitted(training row indices, fit)`` from the other sources, and
    ``score(model, inputs, meta)`` decides the left-out source's rows of each kind of ``tests``
    (``with_copies``). A row without inputs stays ``photo``."""
    from benchmarks import risk_eval

    preds = {(fit[0], kind): ["photo"] * len(rows) for fit in fits for kind in tests}
    for g in sorted(set(groups)):
        train = [i for i, gi in enumerate(groups) if gi != g]
        for fit in fits:
            model = fitted(train, fit)
            for kind, values in tests.items():
                for i in (i for i, gi in enumerate(groups) if gi == g and values[i] is not None):
                    decision = risk_eval.decided(score(model, values[i], rows[i]["meta"]))
                    preds[(fit[0], kind)][i] = decision
        print(f"  left out {g}", file=sys.stderr, flush=True)
    return preds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devset", default=str(ROOT / "var" / "risk_devset"))
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--groups", default="", help="only list misses of these groups")
    ap.add_argument(
        "--no-lit-box", action="store_true",
        help="hold features.lit_box at 0: the analysis before risk-2.4, the model refitted",
    )  # fmt: skip
    ap.add_argument("--views-weight", type=float, help="analyser.VIEWS_WEIGHT (risk-2.4: 3.0)")
    args = ap.parse_args()
    changes = ["no-lit-box"] if args.no_lit_box else []
    if args.views_weight is not None:
        changes.append(f"views-weight={args.views_weight:g}")
    variant = "+".join(changes)
    from benchmarks import risk_eval

    devset = Path(args.devset)
    rows = risk_eval.load_rows(devset, quick=False)
    cache = analysed(devset, rows, args.jobs, variant)
    for r in rows:
        r.update(cache[r["file"]])
    loso = risk_eval.loso_scores(rows)
    with open(os.devnull, "w") as null:
        old = sys.stdout
        sys.stdout = null
        try:
            res = {name: risk_eval.loso_report(rows, name, sc) for name, sc in loso.items()}
        finally:
            sys.stdout = old
    for name, out in res.items():
        line = " ".join(f"{c}={out[c]['recall']:.3f}" for c in risk_eval.CATEGORIES)
        print(f"[{name}] {line} photos_flagged={out['photo']['any_flag']:.3f}")
        m = out["confusion"]
        for t in risk_eval.LABELS:
            print(f"    {t:10s} " + " ".join(f"{p[:4]}={m[t][p]:3d}" for p in risk_eval.LABELS))
    print("per source (learned exact / hand exact):")
    for key, v in res["learned"]["sources"].items():
        h = res["hand"]["sources"][key]
        print(
            f"  {key:40s} n={v['n']:3d} learned {v['exact']:.2f} (flag {v['flagged']:.2f})"
            f"  hand {h['exact']:.2f}"
        )
    # two measures per kind of picture: the framing (``features.lit_box``; the analyser counts
    # 0.9 and up as a picture in a frame, so no scan may reach it) and views of a scan on black
    # (``analyser.scan_views``, which flags a figure by itself: only scans may have much of it)
    from review.risk.analyser import scan_views
    from review.risk.features import Features

    kinds = ["framed photo" if risk_eval.row_group(r) == "framed-photos" else r["category"]
             for r in rows]  # fmt: skip
    measured = [(r, k) for r, k in zip(rows, kinds, strict=True) if r["report"].features]
    for name, value, line in (
        ("lit_box", lambda f: f.lit_box, 0.9),
        ("scan_views", scan_views, 0.1),
    ):
        print(f"{name}: highest, and how many reach {line}")
        for kind in (*risk_eval.LABELS, "framed photo"):
            part = [value(Features(**r["report"].features)) for r, k in measured if k == kind]
            if part:
                print(f"  {kind:12s} n={len(part):3d} highest {max(part):.2f}, "
                      f"{sum(v >= line for v in part)} reach {line}")  # fmt: skip
    if args.misses:
        only = set(filter(None, args.groups.split(",")))
        print("misses (learned, LOSO): truth file group scores lit_box -> decided")
        for r, sc in zip(rows, loso["learned"], strict=True):
            g = risk_eval.row_group(r)
            if only and g not in only:
                continue
            if risk_eval.decided(sc) != r["category"]:
                ps = " ".join(f"{c[:3]}={sc[c]:.2f}" for c in risk_eval.CATEGORIES)
                box = r["report"].features["lit_box"] if r["report"].features else 0.0
                print(f"  {r['category']:10s} {r['file']:34s} {g:20s} {ps} lit_box={box:.2f}"
                      f" -> {risk_eval.decided(sc)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
