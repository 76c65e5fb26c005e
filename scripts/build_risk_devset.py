# ruff: noqa: E501, S602  (inline HTML templates; fixed shell commands whose real output is shown)
"""Build the labelled development set for the risk analyser from files that packages ship.

    python scripts/build_risk_devset.py [--out var/risk_devset] [--seed 5]

Nothing here is committed: images are generated into ``--out`` (git-ignored ``var/``) with
``labels.csv`` beside them. Columns: ``file`` (relative to the folder), ``category`` (``chart``,
``screenshot``, ``medical`` or ``photo``), ``split`` (``dev`` or ``heldout``), ``source`` (where the
pixels came from), ``also`` (other categories that are also true of the image, ``|``-separated,
e.g. a dashboard screenshot that shows a chart) and ``caption`` (a synthetic model caption written
for that image class; about a third are neutral or misleading on purpose).

Sources (all offline):
- photos: scikit-image, scikit-learn and matplotlib sample photos (dev); mahotas demo photos and
  OpenCV's sample photos from Debian's ``opencv-doc`` when installed (held-out). The packages ship
  few real photos, so each one is also used as random crops and rescales; the builder says so in
  the ``source`` column (``...#crop2``).
- medical: DICOM files from ``pydicom-data`` (radiographs, CT, MR, ultrasound, NM) rendered with
  their own or percentile windows, scikit-image microscopy (dev); pydicom's own test files,
  NIfTI brains from nibabel/nilearn, matplotlib's MRI, scikit-image retina, mahotas fluorescence
  microscopy (held-out).
- charts: matplotlib from bundled data sets (scikit-learn tables, matplotlib stock and EEG data).
  Dev and held-out use different chart types and styles; held-out also has HTML/SVG charts and
  tables rendered by Chromium.
- screenshots: headless Chromium (``/usr/bin/chromium`` through Playwright) on local HTML: real
  pydoc pages, real command output in terminal themes, forms, directory listings, code editors
  (dev); dashboards, mail and chat apps, phone viewports, dark mode, spreadsheets, PDF viewer (held-out).
- broadened set (issue 15), each its own source group: real desktop windows of Debian programs
  captured under Xvfb by ``scripts/capture_desktop_windows.py`` into ``--windows`` (x11 and GTK in
  dev, Tk and Qt held-out; licences in ``windows.csv`` and the ``source`` column); colour-mapped,
  transparent and tiny (32-96 px) slices of the MNI template (nilearn, public domain / ICBM
  licence), nibabel's test volumes and pydicom-data radiographs; nilearn's plotting of its bundled
  stat map over the template (BSD); colour, palette and small ultrasound frames from pydicom-data
  and pydicom (MIT and the files' own terms); greyscale, fog and low-contrast versions of the real
  photographs among Debian's ``mate-backgrounds`` and ``lomiri-wallpapers-16.04`` wallpapers
  (GPL-2+ / CC BY-SA, owning package in ``source``) and OpenCV's greyscale calibration photos.
  Needs ``apt-get install xvfb x11-apps x11-utils xterm tk8.6 python3-tk gtk-3-examples zenity
  qtbase5-examples twm icewm mate-backgrounds lomiri-wallpapers opencv-doc``; whatever is missing
  is skipped with a note.
- documentation screenshots (issue 15, source ``qt-doc``, held-out): the example-application
  screenshots of Qt's documentation in Debian's ``qtbase5-doc-html`` (GNU FDL 1.3), windows and
  dialogs drawn on Windows, macOS, KDE and embedded platforms; renderings, diagrams and crops
  that are not a window are listed in ``QT_DOC_NOT_WINDOWS`` and left out.
- second broadening (issue 15, all held out, each its own group; added after every other source
  with their own random stream, so the items above do not change when these are present):
  ``mricron-data`` (BSD-3-clause): grey, colour-table, montage and atlas-overlay views of the
  Colin27 ``ch2`` and INIA19 macaque templates; ``grace`` (GPL-2+): Grace's example plots printed
  by ``gracebat``; ``kde-wallpapers``: the photographs among ``plasma-workspace-wallpapers``
  (GPL-2+); ``xvfb-motif`` (nedit, xpdf, xmgrace), ``xvfb-fox`` (xfe, xfwrite, xfimage, xfpack)
  and ``xvfb-fltk`` (fltk1.3-games) windows, captured only on request:
  ``python scripts/capture_desktop_windows.py --out var/risk_windows --only motif,fox,fltk
  --wms mwm,icewm,twm,none`` (the other toolkits' rows are kept); ``insighttoolkit5-examples``
  (Apache-2.0): the MRI, CT and cryosection scans among ITK's example data; ``dipy`` (BSD-3):
  diffusion-MRI test volumes of ``python3-dipy`` and the colour FA map of ``python-dipy-doc``;
  ``gnucash-docs`` (GFDL-1.1+): every fifth window and dialog figure of GnuCash's manuals;
  ``gnuplot``: gnuplot's charts of the scikit-learn and matplotlib tables. Needs ``apt-get
  install mricron-data grace plasma-workspace-wallpapers nedit xpdf xfe fltk1.3-games mwm
  insighttoolkit5-examples python3-dipy python-dipy-doc gnucash-docs gnuplot-nox``; whatever is
  missing is skipped with a note.
- third broadening (``risk-2.4``, held out, its own group and random stream): ``framed-photos``,
  the photographs among the Debian wallpapers again, each on a black mount, letterboxed or
  pillarboxed, or on a photo viewer's near-black backdrop, half of them in greyscale (the only
  black surrounds in the set had been scans').
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

warnings.filterwarnings("ignore")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")


@dataclass
class Item:
    image: Image.Image
    category: str
    split: str
    source: str
    caption: str
    also: list[str] = field(default_factory=list)
    fmt: str = "png"
    group: str = ""  # the package or generator: what leave-one-source-out leaves out together


def source_group(item: Item) -> str:
    """The package or generator an item comes from (``Item.group`` when the builder set it).

    Files that packages ship count per package; own generators per generator: matplotlib's
    charts (every style), Chromium's pages (every kind), its SVG charts, each toolkit under Xvfb.
    """
    if item.group:
        return item.group
    head, _, rest = item.source.partition(":")
    if head == "matplotlib" and "/" in rest:  # matplotlib:{kind}/{data}/{style}
        return "matplotlib-charts"
    if head == "chromium":  # chromium:{kind}/{size} or chromium:svg-chart
        return "chromium-svg-chart" if rest == "svg-chart" else "chromium-pages"
    return head


@dataclass
class Builder:
    out: Path
    rng: random.Random
    rows: list[dict[str, str]] = field(default_factory=list)
    counter: dict[str, int] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        key = f"{item.split}-{item.category}"
        self.counter[key] = self.counter.get(key, 0) + 1
        name = f"{key}-{self.counter[key]:03d}.{item.fmt}"
        path = self.out / "images" / name
        image = item.image
        if item.fmt == "jpg":
            image.convert("RGB").save(path, quality=self.rng.choice([75, 85, 92]))
        else:
            image.save(path)
        self.rows.append(
            {
                "file": f"images/{name}",
                "category": item.category,
                "split": item.split,
                "source": item.source,
                "also": "|".join(item.also),
                "group": source_group(item),
                "caption": item.caption,
            }
        )


# --------------------------------------------------------------------------------------- photos
PHOTO_CAPTIONS = {
    "astronaut": "a woman in an astronaut suit with an american flag",
    "camera": "a black and white photo of a man with a camera on a tripod",
    "chelsea": "an orange cat looking at the camera",
    "coffee": "a cup of coffee on a saucer with a spoon",
    "rocket": "a rocket on a launch pad with trees in the foreground",
    "motorcycle_left": "a motorcycle parked in a room",
    "brick": "a close up of a brick wall",
    "grass": "a close up of green grass",
    "gravel": "a close up of small stones on the ground",
    "hubble_deep_field": "a bunch of stars and galaxies in the dark sky",
    "moon": "a close up of the surface of the moon",
    "coins": "a bunch of old coins on a table",
    "clock_motion": "a blurry picture of a clock on a wall",
    "china": "a chinese temple with trees in front of it",
    "flower": "a close up of a pink flower with green leaves",
    "grace_hopper": "a woman in a military uniform posing for a picture",
    "DepartmentStore": "the inside of a department store with people shopping",
    "luispedro": "a man with a beard smiling for the camera",
    "lena": "a woman wearing a hat with a feather",
    "aero1": "an aerial view of a city with buildings and roads",
    "aero3": "an aerial view of houses and streets",
    "aloeL": "a potted aloe plant on a table",
    "apple": "a red apple on a white background",
    "baboon": "a close up of a baboon's face",
    "basketball1": "a man throwing a basketball in a room",
    "board": "a wooden board game on a table",
    "building": "a tall building with many windows",
    "butterfly": "a butterfly sitting on a flower",
    "fruits": "a bowl of fruit on a table",
    "graf1": "a wall covered in graffiti",
    "home": "a living room with a couch and a table",
    "leuvenA": "a street with old buildings and cars",
    "messi5": "a soccer player kicking a ball on a field",
    "orange": "an orange on a white background",
    "rubberwhale1": "a toy whale and other objects on a table",
    "squirrel_cls": "a squirrel sitting on the grass",
    "stuff": "a pile of toys on the floor",
    "HappyFish": "a fish swimming in an aquarium",
    "chicky_512": "a small yellow chick standing on straw",
    "box_in_scene": "a box of tea on a cluttered table",
    "left01": "a man holding a checkered board in a room",
    "licenseplate_motion": "a blurry picture of a car license plate",
    "text_defocus": "a blurry picture of a page of text",
    "smarties": "a pile of colorful candies on a table",
    "ela_original": "a group of people standing in front of a building",
}
MISLEADING_PHOTO = [
    "a picture of a screen",  # phone photos are often captioned like this
    "a scan of an old photo",
    "a graphic of a landscape",
    "a photo",
]


def photo_variants(
    b: Builder, img: Image.Image, name: str, split: str, n_crops: int, group: str = ""
) -> Iterator[Item]:
    img = img.convert("RGB")

    def caption() -> str:
        if b.rng.random() < 0.15:
            return b.rng.choice(MISLEADING_PHOTO)
        return PHOTO_CAPTIONS.get(name, "a photo")

    yield Item(
        img, "photo", split, f"{name}", caption(), fmt=b.rng.choice(["jpg", "png"]), group=group
    )
    w, h = img.size
    for i in range(n_crops):
        frac = b.rng.uniform(0.45, 0.85)
        cw, ch = max(16, int(w * frac)), max(16, int(h * frac * b.rng.uniform(0.75, 1.25)))
        ch = min(ch, h)
        x0, y0 = b.rng.randint(0, w - cw), b.rng.randint(0, h - ch)
        crop = img.crop((x0, y0, x0 + cw, y0 + ch))
        scale = b.rng.choice([0.6, 1.0, 1.5, 2.0])
        crop = crop.resize((max(16, int(cw * scale)), max(16, int(ch * scale))), Image.LANCZOS)
        if b.rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        yield Item(crop, "photo", split, f"{name}#crop{i + 1}", caption(), fmt="jpg", group=group)


def build_photos(b: Builder) -> None:
    import matplotlib.cbook as cbook
    from skimage import data as skd
    from sklearn.datasets import load_sample_images

    dev: list[tuple[str, Image.Image, str]] = []
    for name in [
        "astronaut", "camera", "chelsea", "coffee", "rocket", "motorcycle_left", "brick",
        "grass", "gravel", "hubble_deep_field", "moon", "coins", "clock_motion",
    ]:  # fmt: skip
        fetch = getattr(skd, name, None)
        arr = fetch() if fetch else _skimage_file(f"{name}.png")
        dev.append((name, Image.fromarray(arr), "skimage"))
    samples = load_sample_images()
    for name, arr in zip(["china", "flower"], samples.images, strict=True):
        dev.append((name, Image.fromarray(arr), "sklearn"))
    for name, img, group in dev:
        for item in photo_variants(b, img, name, "dev", n_crops=4, group=group):
            b.add(item)

    held: list[tuple[str, Image.Image, str]] = []
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        held.append(("grace_hopper", Image.open(fh).copy(), "matplotlib"))
    try:
        import mahotas.demos

        ddir = Path(mahotas.demos.__file__).parent / "data"
        for name in ["luispedro", "lena"]:
            held.append((name, Image.open(ddir / f"{name}.jpg").copy(), "mahotas"))
    except ImportError:
        print("mahotas not installed: fewer held-out photos", file=sys.stderr)
    if OPENCV_SAMPLES.exists():
        for name in [
            "aero1", "aero3", "aloeL", "apple", "baboon", "basketball1", "board", "building",
            "butterfly", "fruits", "graf1", "home", "leuvenA", "messi5", "orange", "rubberwhale1",
            "squirrel_cls", "stuff", "chicky_512", "box_in_scene", "left01", "licenseplate_motion",
            "ela_original",
        ]:  # fmt: skip
            path = next(OPENCV_SAMPLES.glob(f"{name}.*"))
            held.append((name, Image.open(path).copy(), "opencv-doc"))
    else:
        print("opencv-doc not installed (apt-get install opencv-doc): fewer held-out photos")
    for name, img, group in held:
        for item in photo_variants(b, img, name, "heldout", n_crops=1, group=group):
            b.add(item)


def _skimage_file(name: str) -> np.ndarray:
    import skimage

    return np.asarray(Image.open(Path(skimage.__file__).parent / "data" / name))


# -------------------------------------------------------------------------------------- medical
MEDICAL_CAPTIONS = {
    "CR": ["an x-ray of a person's chest", "an x - ray image of a hand", "a black and white image"],
    "CT": [
        "a ct scan of the abdomen",
        "a cross section of a human body",
        "a black and white photo",
    ],
    "MR": ["an mri scan of the brain", "a black and white image of a human head", "a gray circle"],
    "US": ["an ultrasound image of a baby", "an ultrasound of the heart", "a blurry black image"],
    "NM": ["a bone scan of a human body", "a nuclear medicine scan", "a black and white picture"],
    "MICRO": ["cells under a microscope", "a microscope image of tissue", "a purple pattern"],
    "FLUO": ["fluorescent cells under a microscope", "a microscopy image of nuclei", "stars"],
    "EYE": ["a retinal scan of an eye", "an image of the back of the eye", "an orange circle"],
}


def medical_caption(b: Builder, kind: str) -> str:
    pool = MEDICAL_CAPTIONS[kind]
    return pool[2] if b.rng.random() < 0.3 else b.rng.choice(pool[:2])


def _to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    out = (arr.astype(np.float64) - lo) / max(hi - lo, 1e-6)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def render_dicom(path: Path, frame: int = 0, window: str = "file") -> Image.Image:
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[frame]
    pi = ds.PhotometricInterpretation
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        if rgb.dtype != np.uint8:
            rgb = (rgb / 256).astype(np.uint8)
        return Image.fromarray(rgb)
    if arr.ndim == 3:
        return Image.fromarray(arr.astype(np.uint8))
    values = apply_modality_lut(arr, ds)
    if window == "file" and "WindowCenter" in ds:
        shown = apply_voi_lut(values, ds)
        lo, hi = float(np.min(shown)), float(np.max(shown))
    else:
        shown = values
        q = {"file": (1, 99), "p1": (1, 99), "wide": (0, 100), "narrow": (20, 95)}[window]
        lo, hi = (float(v) for v in np.percentile(values, q))
    img = _to_uint8(shown, lo, hi)
    if pi == "MONOCHROME1":
        img = 255 - img
    return Image.fromarray(img)


def volume_slices(vol: np.ndarray, picks: list[tuple[int, float]]) -> Iterator[np.ndarray]:
    for axis, where in picks:
        idx = int(vol.shape[axis] * where)
        sl = np.take(vol, idx, axis=axis)
        sl = np.rot90(sl)
        lo, hi = np.percentile(sl, (1, 99.5))
        yield _to_uint8(sl, lo, hi)


def build_medical(b: Builder) -> None:
    import data_store
    import pydicom
    import skimage

    store = Path(data_store.__file__).parent / "data"
    own = Path(pydicom.__file__).parent / "data" / "test_files"
    # (file, kind, frame, window, crop box as fractions or None)
    dev_specs: list[tuple[Path, str, int, str, tuple[float, ...] | None]] = [
        (store / "RG1_UNCI.dcm", "CR", 0, "file", None),
        (store / "RG1_UNCI.dcm", "CR", 0, "narrow", None),
        (store / "RG1_UNCI.dcm", "CR", 0, "file", (0.1, 0.3, 0.7, 0.9)),
        (store / "RG3_UNCI.dcm", "CR", 0, "file", None),
        (store / "RG3_UNCI.dcm", "CR", 0, "wide", None),
        (store / "RG3_UNCI.dcm", "CR", 0, "file", (0.2, 0.0, 0.8, 0.6)),
        (store / "MR2_UNCI.dcm", "MR", 0, "file", None),
        (store / "MR2_UNCI.dcm", "MR", 0, "narrow", None),
        (store / "MR2_UNCI.dcm", "MR", 0, "p1", (0.0, 0.2, 0.6, 0.8)),
        (store / "US1_UNCI.dcm", "US", 0, "file", None),
        (store / "OBXXXX1A_2frame.dcm", "US", 0, "file", None),
        (store / "693_UNCI.dcm", "CT", 0, "file", None),
        (store / "693_UNCI.dcm", "CT", 0, "p1", None),
        (store / "693_UNCI.dcm", "CT", 0, "narrow", None),
        (store / "693_UNCI.dcm", "CT", 0, "p1", (0.2, 0.2, 0.8, 0.8)),
        (store / "JPEG2000_UNC.dcm", "NM", 0, "p1", None),
        (store / "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR", 0, "file", None),
        (store / "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR", 0, "wide", None),
        (store / "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR", 0, "p1", (0.3, 0.2, 0.9, 0.8)),
        (store / "emri_small.dcm", "MR", 2, "p1", None),
        (store / "emri_small.dcm", "MR", 5, "p1", None),
        (store / "emri_small.dcm", "MR", 8, "p1", None),
        (store / "gdcm-US-ALOKA-16.dcm", "US", 0, "file", None),
        (store / "color-pl.dcm", "US", 0, "file", None),
    ]
    for path, kind, frame, window, box in dev_specs:
        img = render_dicom(path, frame, window)
        if box:
            w, h = img.size
            img = img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
        src = f"pydicom-data:{path.name}[{frame}]/{window}" + ("#crop" if box else "")
        b.add(Item(img, "medical", "dev", src, medical_caption(b, kind)))
    sk = Path(skimage.__file__).parent / "data"
    phantom = Image.open(sk / "phantom.png").convert("L")
    b.add(Item(phantom, "medical", "dev", "skimage:phantom.png", medical_caption(b, "CT")))
    for name, kind in [("cell.png", "MICRO"), ("ihc.png", "MICRO")]:
        img = Image.open(sk / name).convert("RGB")
        b.add(Item(img, "medical", "dev", f"skimage:{name}", medical_caption(b, kind)))
        for i, item in enumerate(photo_variants(b, img, name, "dev", n_crops=2)):
            if i:
                item.category, item.caption = "medical", medical_caption(b, kind)
                item.source = f"skimage:{name}#crop{i}"
                b.add(item)

    # pydicom's own test files that do not repeat a pydicom-data image
    held_specs: list[tuple[Path, str, int, str]] = [
        (own / "CT_small.dcm", "CT", 0, "file"),
        (own / "CT_small.dcm", "CT", 0, "wide"),
        (own / "MR_small.dcm", "MR", 0, "p1"),
        (own / "examples_ybr_color.dcm", "US", 5, "file"),
        (own / "examples_ybr_color.dcm", "US", 25, "file"),
    ]
    for path, kind, frame, window in held_specs:
        img = render_dicom(path, frame, window)
        src = f"pydicom:{path.name}[{frame}]/{window}"
        b.add(Item(img, "medical", "heldout", src, medical_caption(b, kind)))
    for name, kind in [("retina.jpg", "EYE"), ("microaneurysms.png", "EYE")]:
        img = Image.open(sk / name).convert("RGB")
        b.add(Item(img, "medical", "heldout", f"skimage:{name}", medical_caption(b, kind)))
    try:
        import mahotas.demos

        nuclear = Image.open(Path(mahotas.demos.__file__).parent / "data" / "nuclear.png")
        nuclear = nuclear.convert("RGB")
        b.add(Item(nuclear, "medical", "heldout", "mahotas:nuclear", medical_caption(b, "FLUO")))
        w, h = nuclear.size
        crop = nuclear.crop((w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2))
        b.add(Item(crop, "medical", "heldout", "mahotas:nuclear#crop", "glowing dots"))
    except ImportError:
        pass
    import matplotlib.cbook as cbook

    with cbook.get_sample_data("s1045.ima.gz") as fh:
        raw = gzip.decompress(fh.read()) if not isinstance(fh, gzip.GzipFile) else fh.read()
    mri = np.frombuffer(raw, np.uint16).reshape(256, 256)
    lo, hi = np.percentile(mri, (1, 99.5))
    mri_img = Image.fromarray(_to_uint8(mri, lo, hi))
    b.add(Item(mri_img, "medical", "heldout", "matplotlib:s1045.ima", medical_caption(b, "MR")))
    try:
        import nibabel as nib
        import nilearn

        mni = Path(nilearn.__file__).parent / "datasets" / "data"
        vol = nib.load(mni / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").get_fdata()
        picks = [(2, 0.35), (2, 0.55), (2, 0.7), (1, 0.5), (1, 0.3), (1, 0.65), (0, 0.5),
                 (0, 0.3), (0, 0.4)]  # fmt: skip
        for i, sl in enumerate(volume_slices(vol, picks)):
            img = Image.fromarray(sl).resize((sl.shape[1] * 2, sl.shape[0] * 2), Image.BICUBIC)
            b.add(Item(img, "medical", "heldout", f"nilearn:mni_t1#{i}", medical_caption(b, "MR")))
        epi = nib.load(Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz")
        for i, sl in enumerate(volume_slices(epi.get_fdata()[..., 0], [(2, 0.5), (2, 0.7)])):
            img = Image.fromarray(sl).resize((sl.shape[1] * 3, sl.shape[0] * 3), Image.BICUBIC)
            b.add(Item(img, "medical", "heldout", f"nibabel:example4d#{i}", "a gray blob"))
    except ImportError:
        print("nibabel/nilearn not installed: fewer held-out medical images", file=sys.stderr)


# --------------------------------------------------------------------------------------- charts
DEV_STYLES = [
    "default",
    "ggplot",
    "seaborn-v0_8-whitegrid",
    "bmh",
    "classic",
    "tableau-colorblind10",
]
HELD_STYLES = ["dark_background", "Solarize_Light2", "fivethirtyeight", "seaborn-v0_8-darkgrid",
               "grayscale", "seaborn-v0_8-paper"]  # fmt: skip


def _datasets() -> dict[str, tuple[np.ndarray, list[str]]]:
    import matplotlib.cbook as cbook
    from sklearn import datasets as skds

    out = {}
    for name in ["iris", "wine", "diabetes", "breast_cancer", "linnerud"]:
        d = getattr(skds, f"load_{name}")()
        out[name] = (np.asarray(d.data, dtype=float), list(d.feature_names))
    stocks_csv = cbook.get_sample_data("Stocks.csv", asfileobj=False)
    stocks = np.genfromtxt(stocks_csv, delimiter=",", names=True, skip_header=1)
    cols = [c for c in stocks.dtype.names if c != "Date"]
    out["stocks"] = (np.column_stack([stocks[c] for c in cols]), cols)
    with cbook.get_sample_data("eeg.dat") as fh:
        eeg = np.fromfile(fh, dtype=np.float64).reshape(-1, 4)
    out["eeg"] = (eeg, ["PG3", "PG5", "PG7", "PG9"])
    return out


def chart_types() -> dict[str, Callable]:
    def line(ax, data, cols, rng):
        k = rng.randint(1, min(4, data.shape[1]))
        n = min(len(data), rng.choice([30, 80, 300]))
        for j in range(k):
            col = data[:n, j]
            ax.plot(np.arange(n), col, label=cols[j], marker=rng.choice(["", "", "o", "."]))
        ax.legend(fontsize=8)
        ax.set_xlabel("index")

    def bar(ax, data, cols, rng):
        k = min(len(cols), rng.randint(3, 8))
        ax.bar([c[:10] for c in cols[:k]], np.nanmean(np.abs(data[:, :k]), axis=0))
        ax.tick_params(axis="x", rotation=30)

    def barh(ax, data, cols, rng):
        k = min(len(cols), rng.randint(3, 10))
        ax.barh([c[:12] for c in cols[:k]], np.nanstd(data[:, :k], axis=0))

    def scatter(ax, data, cols, rng):
        i, j = rng.sample(range(data.shape[1]), 2)
        ax.scatter(data[:, i], data[:, j], c=data[:, 0], s=rng.choice([8, 20, 40]), alpha=0.7)
        ax.set_xlabel(cols[i])
        ax.set_ylabel(cols[j])

    def hist(ax, data, cols, rng):
        j = rng.randrange(data.shape[1])
        ax.hist(data[:, j], bins=rng.choice([10, 20, 40]), edgecolor="black")
        ax.set_title(f"Distribution of {cols[j]}")

    def pie(ax, data, cols, rng):
        k = min(len(cols), rng.randint(3, 6))
        ax.pie(np.nanmean(np.abs(data[:, :k]), axis=0), labels=cols[:k], autopct="%1.0f%%")

    def box(ax, data, cols, rng):
        k = min(data.shape[1], 5)
        ax.boxplot(data[:, :k], tick_labels=[c[:8] for c in cols[:k]])

    def heatmap(ax, data, cols, rng):
        corr = np.corrcoef(np.nan_to_num(data[:, :8]).T)
        im = ax.imshow(corr, cmap=rng.choice(["viridis", "coolwarm", "magma"]))
        ax.figure.colorbar(im, ax=ax)
        ax.set_title("Correlation")

    def errorbar(ax, data, cols, rng):
        k = min(data.shape[1], 6)
        ax.errorbar(range(k), np.nanmean(data[:, :k], 0), yerr=np.nanstd(data[:, :k], 0), fmt="o-")
        ax.grid(True)

    def step(ax, data, cols, rng):
        y = np.cumsum(np.abs(np.nan_to_num(data[:50, 0])))
        ax.step(np.arange(len(y)), y)
        ax.set_ylabel("cumulative")

    def stacked(ax, data, cols, rng):
        k = min(data.shape[1], 4)
        y = np.abs(np.nan_to_num(data[:60, :k])).T
        ax.stackplot(np.arange(y.shape[1]), y, labels=cols[:k])
        ax.legend(loc="upper left", fontsize=7)

    def violin(ax, data, cols, rng):
        k = min(data.shape[1], 4)
        ax.violinplot([np.nan_to_num(data[:, j]) for j in range(k)], showmeans=True)

    def polar(ax, data, cols, rng):
        fig = ax.figure
        ax.remove()
        pax = fig.add_subplot(projection="polar")
        theta = np.linspace(0, 2 * np.pi, 100)
        pax.plot(theta, 1 + np.abs(np.sin(theta * rng.randint(2, 6))))
        pax.fill(theta, 1 + 0.5 * np.cos(theta * 3), alpha=0.3)

    def table(ax, data, cols, rng):
        ax.axis("off")
        k = min(len(cols), 5)
        cells = [[f"{v:.2f}" for v in row[:k]] for row in data[: rng.randint(6, 14)]]
        t = ax.table(cellText=cells, colLabels=[c[:10] for c in cols[:k]], loc="center")
        t.scale(1, 1.4)

    def contour(ax, data, cols, rng):
        import matplotlib.cbook as cbook

        dem = cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"]
        cs = ax.contourf(dem, levels=rng.choice([8, 12, 20]), cmap="terrain")
        ax.contour(dem, levels=8, colors="k", linewidths=0.5)
        ax.figure.colorbar(cs, ax=ax, label="elevation (m)")

    def diagram(ax, data, cols, rng):
        ax.axis("off")
        steps = ["Import", "Caption", "Flag risk", "Review", "Export"][: rng.randint(3, 5)]
        for i, s in enumerate(steps):
            x = 0.1 + i * 0.8 / max(len(steps) - 1, 1)
            ax.text(
                x,
                0.5,
                s,
                ha="center",
                va="center",
                fontsize=11,
                bbox={"boxstyle": "round", "fc": rng.choice(["#cde", "#fdc", "#dfd"])},
            )
            if i:
                ax.annotate("", xy=(x - 0.06, 0.5), xytext=(x - 0.8 / max(len(steps) - 1, 1) + 0.06, 0.5),
                            arrowprops={"arrowstyle": "->"})  # fmt: skip

    return {
        "dev": {"line": line, "bar": bar, "barh": barh, "scatter": scatter, "hist": hist,
                "pie": pie, "box": box, "heatmap": heatmap, "errorbar": errorbar, "step": step},
        "heldout": {"stacked": stacked, "violin": violin, "polar": polar, "table": table,
                    "contour": contour, "diagram": diagram, "line": line, "scatter": scatter},
    }  # fmt: skip


CHART_CAPTIONS = {
    "line": ["a line graph showing data over time", "a graph of stock prices"],
    "bar": ["a bar chart with several bars", "a bar graph of the data"],
    "barh": ["a horizontal bar chart", "a chart comparing values"],
    "scatter": ["a scatter plot of points", "a plot with many dots"],
    "hist": ["a histogram of values", "a bar graph showing a distribution"],
    "pie": ["a pie chart with percentages", "a pie chart divided into slices"],
    "box": ["a box plot of several variables", "a chart with boxes and whiskers"],
    "heatmap": ["a heat map of a correlation matrix", "a colorful grid chart"],
    "errorbar": ["a graph with error bars", "a line plot with points"],
    "step": ["a step graph going up", "a line chart"],
    "stacked": ["a stacked area chart", "a colorful area graph"],
    "violin": ["a violin plot", "a chart with shapes"],
    "polar": ["a polar plot", "a radar chart"],
    "table": ["a table of numbers", "a table with rows and columns"],
    "contour": ["a contour map of elevation", "a topographic map with a color bar"],
    "diagram": ["a flow chart with boxes and arrows", "a diagram of a process"],
}
NEUTRAL_CHART = ["a white background with colorful lines", "a picture of some text and shapes",
                 "a blue and orange image", "a close up of a piece of paper"]  # fmt: skip


def build_charts(b: Builder) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = _datasets()
    types = chart_types()
    plan = [("dev", 44, DEV_STYLES), ("heldout", 22, HELD_STYLES)]
    for split, count, styles in plan:
        names = list(types[split])
        for i in range(count):
            kind = names[i % len(names)]
            ds = b.rng.choice(list(data))
            arr, cols = data[ds]
            style = b.rng.choice(styles)
            with plt.style.context(style):
                fig, ax = plt.subplots(
                    figsize=(b.rng.uniform(4, 11), b.rng.uniform(3, 7)),
                    dpi=b.rng.choice([72, 100, 120, 150]),
                )
                types[split][kind](ax, arr, cols, b.rng)
                if b.rng.random() < 0.5 and kind not in {"table", "diagram", "polar"}:
                    ax.set_title(f"{ds.replace('_', ' ').title()} data")
                buf = io.BytesIO()
                fig.tight_layout()
                fig.savefig(buf, format="png")
                plt.close(fig)
            img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
            cap = (
                b.rng.choice(NEUTRAL_CHART)
                if b.rng.random() < 0.3
                else b.rng.choice(CHART_CAPTIONS[kind])
            )
            fmt = "jpg" if b.rng.random() < 0.3 else "png"
            b.add(Item(img, "chart", split, f"matplotlib:{kind}/{ds}/{style}", cap, fmt=fmt))


# ---------------------------------------------------------------------------------- screenshots
CSS_LIGHT = "body{font-family:sans-serif;margin:0;background:#fff;color:#222}"
CSS_DARK = "body{font-family:sans-serif;margin:0;background:#1e1e1e;color:#ddd}"


def _pydoc_page(module: str) -> str:
    import pydoc

    obj = pydoc.locate(module)
    return pydoc.html.page(pydoc.describe(obj), pydoc.html.document(obj, module))


def _terminal(commands: list[str], theme: tuple[str, str, str]) -> str:
    bg, fg, prompt = theme
    parts = []
    for cmd in commands:
        try:
            res = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10)
            output = (res.stdout + res.stderr)[:3000]
        except subprocess.TimeoutExpired:
            output = ""
        parts.append(
            f'<span style="color:{prompt}">dev@captiondesk:~/work$</span> {html.escape(cmd)}\n'
            f"{html.escape(output)}"
        )
    body = "".join(parts)
    return (
        f"<html><body style='margin:0;background:{bg};color:{fg}'>"
        f"<div style='background:#444;color:#eee;font:13px sans-serif;padding:4px 10px'>"
        f"● ● ●  dev@captiondesk: ~/work</div>"
        f"<pre style='font:14px/1.3 monospace;padding:8px;margin:0;white-space:pre-wrap'>{body}"
        f"</pre></body></html>"
    )


def _code_editor(path: Path, style: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    code = path.read_text(errors="replace")[:6000]
    fmt = HtmlFormatter(style=style, linenos="table", full=False)
    bg = fmt.style.background_color or "#fff"
    tabs = "".join(
        f"<span style='padding:6px 14px;background:{'#333' if i else bg};color:#999'>{n}</span>"
        for i, n in enumerate([path.name, "settings.py", "README.md"])
    )
    return (
        f"<html><head><style>{fmt.get_style_defs('.highlight')} body{{margin:0;background:{bg}}}"
        f" pre{{font:13px monospace}}</style></head><body><div style='display:flex'>"
        f"<div style='width:200px;background:#252526;color:#ccc;font:13px sans-serif;"
        f"padding:8px;height:2000px'>EXPLORER<br>▾ captiondesk<br>&nbsp;&nbsp;models.py<br>"
        f"&nbsp;&nbsp;views.py<br>&nbsp;&nbsp;{html.escape(path.name)}</div><div style='flex:1'>"
        f"<div style='background:#2d2d2d;font:12px sans-serif;padding:6px 0'>{tabs}</div>"
        f"{highlight(code, PythonLexer(), fmt)}</div></div></body></html>"
    )


def _form(title: str, fields: list[str], dark: bool) -> str:
    rows = "".join(
        f"<label style='display:block;margin:12px 0 4px'>{f}</label>"
        f"<input style='width:100%;padding:8px;border:1px solid #aaa;border-radius:4px' "
        f"value='{'' if i % 2 else 'example'}'>"
        for i, f in enumerate(fields)
    )
    css = CSS_DARK if dark else CSS_LIGHT
    return (
        f"<html><head><style>{css}</style></head><body>"
        f"<div style='background:#3367d6;color:#fff;padding:14px 24px;font-size:20px'>Acme Cloud"
        f"<span style='float:right;font-size:14px'>Docs · Pricing · Sign in</span></div>"
        f"<div style='max-width:420px;margin:40px auto;padding:24px;border:1px solid #ccc;"
        f"border-radius:8px'><h2>{title}</h2>{rows}<button style='margin-top:18px;padding:10px 24px;"
        f"background:#3367d6;color:#fff;border:0;border-radius:4px'>Continue</button>"
        f"<p style='font-size:13px'>By continuing you agree to the terms of service.</p></div>"
        f"</body></html>"
    )


def _dashboard(rng: random.Random, dark: bool) -> str:
    cards = "".join(
        f"<div style='flex:1;margin:8px;padding:16px;border-radius:8px;"
        f"background:{'#2a2a2a' if dark else '#f4f6fa'}'><div style='font-size:13px;opacity:.7'>"
        f"{label}</div><div style='font-size:28px;font-weight:bold'>{rng.randint(100, 99999):,}"
        f"</div></div>"
        for label in ["Active users", "Revenue", "Orders", "Errors"]
    )
    bars = "".join(
        f"<rect x='{20 + i * 36}' y='{200 - h}' width='24' height='{h}' fill='#4e79a7'/>"
        for i, h in enumerate(rng.randint(20, 180) for _ in range(14))
    )
    rows = "".join(
        f"<tr><td>#{rng.randint(1000, 9999)}</td><td>{rng.choice(['Paid', 'Pending', 'Failed'])}"
        f"</td><td>${rng.randint(5, 900)}.00</td><td>2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        f"</td></tr>"
        for _ in range(8)
    )
    side = "".join(f"<div style='padding:10px 16px'>{s}</div>" for s in
                   ["Overview", "Analytics", "Customers", "Orders", "Settings"])  # fmt: skip
    css = CSS_DARK if dark else CSS_LIGHT
    return (
        f"<html><head><style>{css} td{{padding:6px 12px;border-bottom:1px solid #8884}}</style>"
        f"</head><body><div style='display:flex'><div style='width:180px;background:#202938;"
        f"color:#cfd6e4;min-height:1400px'><div style='padding:16px;font-weight:bold'>Metrics</div>"
        f"{side}</div><div style='flex:1;padding:12px'><h2>Overview</h2><div style='display:flex'>"
        f"{cards}</div><svg width='540' height='210'>{bars}<line x1='10' y1='200' x2='530' y2='200'"
        f" stroke='#888'/></svg><table>{rows}</table></div></div></body></html>"
    )


def _mail(rng: random.Random, dark: bool) -> str:
    subjects = ["Quarterly report", "Re: lunch tomorrow?", "Your invoice #4821", "Build failed",
                "Welcome to the team", "Meeting notes", "Password reset", "Weekly digest"]  # fmt: skip
    items = "".join(
        f"<div style='padding:10px;border-bottom:1px solid #8884'><b>{rng.choice(['Ana', 'Bo', 'Chen', 'Dee'])}"
        f"</b><span style='float:right;font-size:12px'>{rng.randint(1, 12)}:{rng.randint(10, 59)}</span>"
        f"<div>{s}</div><div style='font-size:12px;opacity:.6'>Hi, just a quick note about the "
        f"plan for next week and the numbers we discussed...</div></div>"
        for s in subjects
    )  # fmt: skip
    css = CSS_DARK if dark else CSS_LIGHT
    return (
        f"<html><head><style>{css}</style></head><body><div style='background:#c5221f;color:#fff;"
        f"padding:10px 16px'>Mail <input style='margin-left:40px;width:40%;padding:6px' "
        f"placeholder='Search mail'></div><div style='display:flex'><div style='width:160px;"
        f"padding:10px'>Inbox (12)<br><br>Starred<br><br>Sent<br><br>Drafts</div>"
        f"<div style='flex:1'>{items}</div></div></body></html>"
    )


def _chat(rng: random.Random, dark: bool) -> str:
    lines = ["hey, are you coming tonight?", "yes! what time?", "around 8", "ok see you there 👍",
             "can you send me the slides?", "sure, one sec", "thanks!!"]  # fmt: skip
    bubbles = "".join(
        f"<div style='text-align:{'right' if i % 2 else 'left'};margin:8px'>"
        f"<span style='display:inline-block;padding:8px 12px;border-radius:16px;"
        f"background:{'#0b93f6;color:#fff' if i % 2 else ('#333' if dark else '#e5e5ea')}'>"
        f"{t}</span></div>"
        for i, t in enumerate(lines)
    )
    css = CSS_DARK if dark else CSS_LIGHT
    return (
        f"<html><head><style>{css}</style></head><body><div style='padding:12px;font-weight:bold;"
        f"border-bottom:1px solid #8886;text-align:center'>Sam ›</div>{bubbles}"
        f"<div style='position:fixed;bottom:0;left:0;right:0;padding:10px;border-top:1px solid "
        f"#8886'><input style='width:85%;padding:8px;border-radius:16px;border:1px solid #999' "
        f"placeholder='Message'></div></body></html>"
    )


def _spreadsheet(data: np.ndarray, cols: list[str]) -> str:
    head = "".join(f"<th>{chr(65 + i)}</th>" for i in range(len(cols[:9])))
    first = "".join(f"<td><b>{html.escape(c[:12])}</b></td>" for c in cols[:9])
    body = "".join(
        f"<tr><th>{r + 2}</th>" + "".join(f"<td>{v:.2f}</td>" for v in row[:9]) + "</tr>"
        for r, row in enumerate(data[:40])
    )
    return (
        "<html><head><style>body{margin:0;font:13px sans-serif} th{background:#eee;"
        "font-weight:normal;border:1px solid #ccc;padding:2px 6px} td{border:1px solid #ddd;"
        "padding:2px 6px;text-align:right}</style></head><body><div style='background:#1e7145;"
        "color:#fff;padding:8px'>Book1 - Spreadsheet</div><div style='padding:4px;border-bottom:"
        "1px solid #ccc'>File Edit View Insert Format Data Tools Help</div><div style='padding:4px'>"
        f"fx =AVERAGE(B2:B40)</div><table style='border-collapse:collapse'><tr><th></th>{head}</tr>"
        f"<tr><th>1</th>{first}</tr>{body}</table></body></html>"
    )


def _pdf_viewer(text: str) -> str:
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n")[:12])
    return (
        "<html><body style='margin:0;background:#525659'><div style='background:#323639;"
        "color:#eee;padding:10px;font:13px sans-serif'>report.pdf &nbsp; 1 / 12 &nbsp; − 100% +"
        "</div><div style='width:640px;margin:20px auto;background:#fff;padding:50px;"
        f"font:14px/1.5 serif'>{paras}</div></body></html>"
    )


def _svg_chart(rng: random.Random) -> str:
    kind = rng.choice(["bars", "lines", "donut"])
    w, h = 640, 400
    parts = [f"<rect width='{w}' height='{h}' fill='#fff'/>"]
    if kind == "bars":
        vals = [rng.randint(20, 300) for _ in range(8)]
        for i, v in enumerate(vals):
            parts.append(f"<rect x='{70 + i * 66}' y='{350 - v}' width='44' height='{v}' "
                         f"fill='{rng.choice(['#59a14f', '#e15759', '#4e79a7'])}'/>")  # fmt: skip
            parts.append(f"<text x='{80 + i * 66}' y='370' font-size='12'>Q{i + 1}</text>")
    elif kind == "lines":
        for c in ["#4e79a7", "#f28e2b"]:
            pts = " ".join(f"{60 + i * 28},{rng.randint(60, 340)}" for i in range(20))
            parts.append(f"<polyline points='{pts}' fill='none' stroke='{c}' stroke-width='2'/>")
        for y in range(50, 351, 60):
            parts.append(f"<line x1='60' y1='{y}' x2='620' y2='{y}' stroke='#ddd'/>")
    else:
        acc = 0.0
        for v, c in zip([0.4, 0.25, 0.2, 0.15], ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2"],
                        strict=True):  # fmt: skip
            a0, a1 = acc * 2 * np.pi, (acc + v) * 2 * np.pi
            acc += v
            x0, y0 = 320 + 150 * np.sin(a0), 200 - 150 * np.cos(a0)
            x1, y1 = 320 + 150 * np.sin(a1), 200 - 150 * np.cos(a1)
            parts.append(f"<path d='M{x0:.1f},{y0:.1f} A150,150 0 {int(v > 0.5)},1 {x1:.1f},"
                         f"{y1:.1f}' stroke='{c}' stroke-width='60' fill='none'/>")  # fmt: skip
        parts.append("<text x='290' y='205' font-size='22'>62%</text>")
    if kind != "donut":
        parts.append("<line x1='60' y1='350' x2='620' y2='350' stroke='#333'/>")
        parts.append("<line x1='60' y1='40' x2='60' y2='350' stroke='#333'/>")
    parts.append(f"<text x='60' y='28' font-size='18' font-family='sans-serif'>"
                 f"{rng.choice(['Sales by quarter', 'Visitors', 'Market share'])}</text>")  # fmt: skip
    return f"<html><body style='margin:0'><svg width='{w}' height='{h}'>{''.join(parts)}</svg></body></html>"  # noqa: E501


SHOT_CAPTIONS = {
    "docs": ["a screenshot of a web page with text", "a website with documentation"],
    "terminal": ["a screenshot of a terminal window", "a computer screen with code on it"],
    "form": ["a screenshot of a login page", "a web page with a sign up form"],
    "listing": ["a screenshot of a list of files", "a web page with a list of links"],
    "editor": ["a screenshot of a code editor", "a computer screen showing python code"],
    "dashboard": ["a screenshot of a dashboard", "a web page with statistics and a chart"],
    "mail": ["a screenshot of an email inbox", "a web page with a list of messages"],
    "chat": ["a screenshot of a text conversation on a phone", "a text message conversation"],
    "sheet": ["a screenshot of a spreadsheet", "an excel spreadsheet with numbers"],
    "pdf": ["a screenshot of a document", "a page of text in a pdf viewer"],
}
NEUTRAL_SHOT = ["a white page with black text", "a black background with white text",
                "a picture of some words", "a blue and white sign"]  # fmt: skip


def build_screenshots_and_html_charts(b: Builder, tmp: Path) -> None:
    from playwright.sync_api import sync_playwright

    rng = b.rng
    data = _datasets()
    desktop = [(1280, 800), (1366, 768), (1440, 900), (1920, 1080), (1024, 768)]
    phone = [(390, 844), (412, 915), (360, 740)]
    venv_lib = Path(np.__file__).parent.parent
    py_files = (
        sorted(venv_lib.glob("django/contrib/admin/*.py"))[:12]
        + sorted(venv_lib.glob("requests/*.py"))[:8]
    )
    themes = [("#000", "#ccc", "#5f5"), ("#1e1e1e", "#ddd", "#6cf"), ("#fdf6e3", "#333", "#268bd2"),
              ("#282a36", "#f8f8f2", "#ff79c6")]  # fmt: skip
    cmds = ["ls -la /usr/lib | head -40", "uname -a; df -h", "ps aux | head -30",
            "python3 --version; pip --version", "git --version; ls /etc | head -40",
            "cat /etc/os-release; env | cut -c1-60 | head -20", "ls -R /usr/share/doc | head -50",
            "free -m; cat /proc/cpuinfo | head -25"]  # fmt: skip
    modules = ["json", "os.path", "collections", "argparse", "pathlib", "random", "logging",
               "csv", "shutil", "textwrap", "datetime", "functools"]  # fmt: skip
    dirs = ["/usr/share/doc", "/etc", "/usr/lib/python3", "/usr/bin"]
    styles = ["monokai", "default", "friendly", "solarized-dark", "github-dark", "vs"]

    def dev_page(i: int) -> tuple[str, str, tuple[int, int], str, str]:
        kind = ["docs", "terminal", "form", "listing", "editor"][i % 5]
        size = rng.choice(desktop)
        if kind == "docs":
            return kind, _pydoc_page(modules[i % len(modules)]), size, "light", ""
        if kind == "terminal":
            return kind, _terminal(rng.sample(cmds, 2), rng.choice(themes)), size, "dark", ""
        if kind == "form":
            title = rng.choice(["Sign in", "Create your account", "Billing details"])
            fields = rng.sample(["Email", "Password", "Name", "Company", "Phone", "Address"], 4)
            return kind, _form(title, fields, False), size, "light", ""
        if kind == "listing":
            return kind, "", size, "light", f"file://{rng.choice(dirs)}/"
        path = rng.choice(py_files)
        return kind, _code_editor(path, rng.choice(styles)), size, "dark", ""

    def held_page(i: int) -> tuple[str, str, tuple[int, int], str, str]:
        kind = ["dashboard", "mail", "chat", "sheet", "pdf", "docs", "form"][i % 7]
        dark = rng.random() < 0.4
        size = rng.choice(desktop)
        if kind == "dashboard":
            return kind, _dashboard(rng, dark), size, "", ""
        if kind == "mail":
            return kind, _mail(rng, dark), size, "", ""
        if kind == "chat":
            return kind, _chat(rng, dark), rng.choice(phone), "", ""
        if kind == "sheet":
            arr, cols = data[rng.choice(["iris", "wine", "diabetes"])]
            return kind, _spreadsheet(arr, cols), size, "", ""
        if kind == "pdf":
            text = subprocess.run([sys.executable, "-c", "import this"], capture_output=True,
                                  text=True).stdout  # fmt: skip
            return kind, _pdf_viewer(text.replace("\n", "\n\n")), size, "", ""
        if kind == "docs":  # phone-sized docs page, sometimes forced dark
            page = _pydoc_page(rng.choice(["string", "heapq", "bisect", "statistics"]))
            if dark:
                dark_css = "<style>body,table,td{background:#121212!important;color:#ddd}</style>"
                page = page.replace("</head>", dark_css + "</head>")
            return kind, page, rng.choice(phone), "", ""
        fields = rng.sample(["Email", "Password", "Name", "Company", "Phone", "Address"], 3)
        return kind, _form("Settings", fields, dark), rng.choice(phone), "", ""

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for split, count, maker in [("dev", 40, dev_page), ("heldout", 28, held_page)]:
            for i in range(count):
                kind, page_html, (w, h), _, url = maker(i)
                scale = rng.choice([1, 1, 2]) if w > 500 else rng.choice([2, 3])
                ctx = browser.new_context(
                    viewport={"width": w, "height": h}, device_scale_factor=scale,
                    color_scheme="dark" if rng.random() < 0.3 else "light",
                )  # fmt: skip
                page = ctx.new_page()
                if url:
                    page.goto(url)
                else:
                    path = tmp / f"{split}-{i}.html"
                    path.write_text(page_html)
                    page.goto(path.as_uri())
                shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
                ctx.close()
                cap = (
                    rng.choice(NEUTRAL_SHOT)
                    if rng.random() < 0.3
                    else rng.choice(SHOT_CAPTIONS[kind])
                )
                also = ["chart"] if kind in {"dashboard", "sheet"} else []
                fmt = "jpg" if rng.random() < 0.2 else "png"
                b.add(Item(shot, "screenshot", split, f"chromium:{kind}/{w}x{h}@{scale}", cap,
                           also=also, fmt=fmt))  # fmt: skip
        # Held-out charts drawn by a browser instead of matplotlib.
        for i in range(10):
            ctx = browser.new_context(viewport={"width": 640, "height": 400})
            page = ctx.new_page()
            path = tmp / f"svgchart-{i}.html"
            path.write_text(_svg_chart(rng))
            page.goto(path.as_uri())
            shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
            ctx.close()
            cap = rng.choice(["a bar chart", "a graph with two lines", "a donut chart", "a logo"])
            b.add(Item(shot, "chart", "heldout", "chromium:svg-chart", cap))
        browser.close()


# ------------------------------------------------------------------ broadened set (issue 15)
# Real material from sources the earlier set lacked: desktop windows of four toolkits under Xvfb,
# colour and tiny medical pictures, greyscale and low-contrast photographs. Each source is its own
# ``group`` so that leave-one-source-out evaluation leaves it out whole.
WINDOW_SPLIT = {"x11": "dev", "gtk": "dev", "tk": "heldout", "qt": "heldout", "motif": "heldout",
                "fox": "heldout", "fltk": "heldout"}  # fmt: skip
# windows of these toolkits are added after every other source (``build_new_sources``), so that
# the items, captions and file names of the earlier set do not move when they are captured
NEW_WINDOW_TOOLKITS = {"motif", "fox", "fltk"}
WINDOW_CAPTIONS = ["a screenshot of a computer window", "a dialog box with buttons",
                   "a computer screen with text", "a window with a menu bar", "a gray box",
                   "a white rectangle with some text"]  # fmt: skip
WALLPAPER_PHOTOS = {  # real photographs among the Debian wallpapers (licences: each package's
    # debian/copyright, CC BY-SA 3.0/4.0 or GPL-2+); the owning package is asked of dpkg
    "mate-backgrounds": ["mate/nature/*.jpg"],
    "lomiri-wallpapers": [
        "*by_Aitzol_Berasategi*",
        "*by_Sander_Klootwijk*",
        "*by_Bolly*",
        "*by_Aury88*",
        "*by_Lukas_Baubkus*",
        "*by_freespace*",
        "*by_Jakkub_Mede*",
        "*by_Peter_Nerlich*",
        "*by_Clements_Engelhardt*",
    ],  # fmt: skip
}
BACKGROUNDS = Path("/usr/share/backgrounds")


def build_windows(b: Builder, windows: Path, new_toolkits: bool = False) -> None:
    """Desktop application windows captured under Xvfb (``scripts/capture_desktop_windows.py``);
    with ``new_toolkits`` only those of ``NEW_WINDOW_TOOLKITS``, else only the others."""
    listing = windows / "windows.csv"
    if new_toolkits:
        if not listing.exists():
            return
    elif not listing.exists():
        sys.path.insert(0, str(Path(__file__).parent))
        from capture_desktop_windows import capture_all

        if not shutil.which("Xvfb"):
            print("Xvfb not installed: no desktop windows (apt-get install xvfb x11-apps ...)")
            return
        capture_all(windows, None, ("twm", None, "icewm"))
    with open(listing, newline="") as fh:
        for row in csv.DictReader(fh):
            tk = row["toolkit"]
            if (tk in NEW_WINDOW_TOOLKITS) != new_toolkits:
                continue
            img = Image.open(windows / row["file"]).convert("RGB")
            src = f"xvfb-{tk}:{row['program']} wm={row['wm']} {row['theme']} ({row['licence']})"
            fmt = "jpg" if b.rng.random() < 0.2 else "png"
            # xmgrace windows show the plot they opened; Xfe's image viewer shows a photograph
            also = ["chart"] if "xmgrace " in row["program"] + " " else []
            also += ["photo"] if row["program"].startswith("xfimage") else []
            b.add(Item(img, "screenshot", WINDOW_SPLIT[tk], src.strip(),
                       b.rng.choice(WINDOW_CAPTIONS), also=also, fmt=fmt,
                       group=f"xvfb-{tk}"))  # fmt: skip


QT_DOC = Path("/usr/share/qt5/doc")
# Example pictures of Qt's documentation that are not a window or dialog of widgets: renderings
# (fractals, OpenGL scenes, clocks, graphics-view and animation demos), diagrams, a photo,
# single-widget crops and collages. Picked by looking at every ``*example*.png`` once (issue 15).
QT_DOC_NOT_WINDOWS = {
    "mandelbrot-example", "remotecontrolledcar-car-example", "analogclock-window-example",
    "openglwindow-example", "2dpainting-example", "hellogl2-example", "hellogles3-example",
    "opengl-examples", "textures-example", "drilldown-example", "analogclock-example",
    "animatedtiles-example", "basicgraphicslayouts-example", "blurpickereffect-example",
    "checkboxexample", "collidingmice-example", "concentriccircles-example",
    "digitalclock-example", "dragdroprobot-example", "draggableicons-example",
    "elasticnodes-example", "example_model", "factorial-example",
    "fademessageeffect-example-faded", "fademessageeffect-example", "fontsampler-example",
    "graphicsanchorlayout-example", "graphicssimpleanchorlayout-example",
    "imagecomposition-example", "mainwindow-docks-example", "moveblocks-example", "movie-example",
    "padnavigator-example", "pingpong-example", "pixelator-example", "scribble-example",
    "shapedclock-example", "simpleanchorlayout-example", "stickman-example", "stickman-example1",
    "stickman-example2", "stickman-example3", "tabletexample", "tetrix-example",
    "tooltips-example", "touch-dials-example", "touch-fingerpaint-example", "touch-knobs-example",
    "touch-pinchzoom-example", "trafficlight-example", "trafficlight-example1",
    "trafficlight-example2", "transformations-example", "trivialwizard-example-flow",
    "weatheranchorlayout-example", "wiggly-example",
}  # fmt: skip


def build_doc_screenshots(b: Builder) -> None:
    """Screenshots of Qt's example applications that Debian's ``qtbase5-doc-html`` ships (GNU
    FDL 1.3, Debian's copyright file): windows and dialogs drawn by Qt 4 and 5 on Windows, macOS,
    KDE and embedded platforms, unlike the Xvfb captures. ``QT_DOC_NOT_WINDOWS`` is left out."""
    files = sorted(QT_DOC.glob("*/images/*example*.png"))
    if not files:
        print("no Qt documentation pictures (apt-get install qtbase5-doc-html)")
        return
    for path in files:
        if path.stem in QT_DOC_NOT_WINDOWS:
            continue
        with Image.open(path) as img:
            if min(img.size) < 48:
                continue
            pixels = img.convert("RGBA") if "A" in img.getbands() or "transparency" in img.info \
                else img.convert("RGB")  # fmt: skip
        also = ["chart"] if path.stem == "chart-example" else []
        src = f"qt-doc:{path.parent.parent.name}/{path.name} (GFDL-1.3, Debian qtbase5-doc-html)"
        b.add(Item(pixels, "screenshot", "heldout", src, b.rng.choice(WINDOW_CAPTIONS),
                   also=also, group="qt-doc"))  # fmt: skip


def _cmap(name: str, grey: np.ndarray) -> Image.Image:
    import matplotlib

    rgba = matplotlib.colormaps[name](grey.astype(np.float32) / 255.0)
    return Image.fromarray((rgba[..., :3] * 255).astype(np.uint8))


def build_colour_and_tiny_medical(b: Builder) -> None:
    import data_store
    import matplotlib
    import nibabel as nib
    import nilearn

    matplotlib.use("Agg")
    store = Path(data_store.__file__).parent / "data"
    mni_dir = Path(nilearn.__file__).parent / "datasets" / "data"
    nib_dir = Path(nib.__file__).parent / "tests" / "data"
    vols = {
        "mni_t1": nib.load(mni_dir / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").get_fdata(),
        "mni_gm": nib.load(mni_dir / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz").get_fdata(),
        "mni_wm": nib.load(mni_dir / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz").get_fdata(),
        "anatomical": nib.load(nib_dir / "anatomical.nii").get_fdata(),
    }  # fmt: skip
    # colour-mapped slices, as viewers show parameter maps (perfusion, FA, PET/SPECT fusion)
    cmaps = ["hot", "jet", "viridis", "inferno", "gist_heat", "nipy_spectral", "magma", "turbo",
             "cool", "plasma", "bone", "afmhot"]  # fmt: skip
    picks = [(2, 0.4), (2, 0.6), (1, 0.5), (0, 0.45), (2, 0.5), (1, 0.4)]
    k = 0
    for name in ("mni_t1", "mni_gm", "mni_wm", "anatomical"):
        for sl in volume_slices(vols[name], b.rng.sample(picks, 3)):
            cmap = cmaps[k % len(cmaps)]
            k += 1
            img = _cmap(cmap, sl)
            scale = 3 if name == "anatomical" else b.rng.choice([1, 2])
            img = img.resize((img.width * scale, img.height * scale), Image.BICUBIC)
            split = "dev" if name in {"mni_gm", "anatomical"} else "heldout"
            b.add(Item(img, "medical", split, f"colour-slices:{name}/{cmap}",
                       b.rng.choice(["a colour map of a brain scan", "a pet scan of the brain",
                                     "a colorful blob"]), group="colour-slices"))  # fmt: skip
    # a brain on a transparent background (viewers and papers export slices that way)
    for where in (0.45, 0.6):
        sl = next(volume_slices(vols["mni_t1"], [(2, where)]))
        alpha = np.where(sl > 20, 255, 0).astype(np.uint8)
        rgba = Image.merge("RGBA", (*Image.fromarray(sl).convert("RGB").split(),
                                    Image.fromarray(alpha)))  # fmt: skip
        b.add(Item(rgba, "medical", "heldout", f"colour-slices:mni_t1-transparent/{where}",
                   "a brain on a white background", group="colour-slices"))  # fmt: skip
    # tiny slices, as thumbnails and icons carry them (under 100 px on a side)
    tiny_sources = [
        (next(volume_slices(vols["mni_t1"], [(2, 0.5)])), "mni_t1"),
        (next(volume_slices(vols["mni_t1"], [(1, 0.55)])), "mni_t1"),
        (next(volume_slices(vols["anatomical"], [(2, 0.5)])), "anatomical"),
        (np.asarray(render_dicom(store / "RG1_UNCI.dcm").convert("L")), "RG1"),
        (np.asarray(render_dicom(store / "693_UNCI.dcm").convert("L")), "CT693"),
        (np.asarray(render_dicom(store / "MR2_UNCI.dcm").convert("L")), "MR2"),
        (np.asarray(render_dicom(store / "US1_UNCI.dcm").convert("L")), "US1"),
    ]
    for arr, name in tiny_sources:
        for side in b.rng.sample([32, 48, 64, 80, 96], 2):
            img = Image.fromarray(arr)
            f = side / max(img.size)
            img = img.resize((max(8, round(img.width * f)), max(8, round(img.height * f))),
                             Image.LANCZOS)  # fmt: skip
            b.add(Item(img, "medical", "dev" if side < 64 else "heldout",
                       f"tiny-slices:{name}@{side}px", b.rng.choice(["a small x-ray",
                       "a tiny black and white image", "a brain scan"]), group="tiny-slices"))  # fmt: skip


def build_nilearn_figures(b: Builder) -> None:
    """Brain figures drawn by nilearn's plotting (stat maps over anatomy, glass brains, ROIs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nilearn
    from nilearn import plotting

    data = Path(nilearn.__file__).parent / "datasets" / "data"
    stat = str(data / "image_10426.nii.gz")
    t1 = str(data / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    gm = str(data / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")
    figures = [
        ("stat_map-ortho", lambda fig: plotting.plot_stat_map(stat, bg_img=t1, figure=fig,
                                                              threshold=2.0)),
        ("stat_map-z", lambda fig: plotting.plot_stat_map(stat, bg_img=t1, display_mode="z",
                                                          cut_coords=5, figure=fig, threshold=1.5)),
        ("stat_map-x", lambda fig: plotting.plot_stat_map(stat, bg_img=t1, display_mode="x",
                                                          cut_coords=3, figure=fig, colorbar=False,
                                                          threshold=2.5)),
        ("anat", lambda fig: plotting.plot_anat(t1, figure=fig, dim=-0.5)),
        ("anat-z", lambda fig: plotting.plot_anat(t1, display_mode="z", cut_coords=4, figure=fig)),
        ("epi-jet", lambda fig: plotting.plot_epi(gm, cmap="jet", figure=fig)),
        ("glass_brain", lambda fig: plotting.plot_glass_brain(stat, figure=fig, threshold=2.0)),
        ("img-hot", lambda fig: plotting.plot_img(gm, cmap="hot", figure=fig, colorbar=True)),
        ("roi", lambda fig: plotting.plot_roi(stat, bg_img=t1, figure=fig, cmap="Paired")),
        ("stat_map-black", lambda fig: plotting.plot_stat_map(stat, bg_img=t1, figure=fig,
                                                              black_bg=True, threshold=1.0)),
    ]  # fmt: skip
    for i, (name, draw) in enumerate(figures):
        fig = plt.figure(figsize=(b.rng.uniform(6, 10), b.rng.uniform(3, 4.5)),
                         dpi=b.rng.choice([72, 100]))  # fmt: skip
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
        plt.close("all")
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        b.add(Item(img, "medical", "dev" if i % 2 else "heldout", f"nilearn-plotting:{name}",
                   b.rng.choice(["an fmri image of the brain", "brain activity map",
                                 "three views of a brain"]), group="nilearn-plotting"))  # fmt: skip


def build_more_ultrasound(b: Builder) -> None:
    """Ultrasound frames the first set did not use: colour, palette and small ones."""
    import data_store
    import pydicom

    store = Path(data_store.__file__).parent / "data"
    own = Path(pydicom.__file__).parent / "data" / "test_files"
    specs = [
        (store / "color3d_jpeg_baseline.dcm", 10, "pydicom-data"),
        (store / "color3d_jpeg_baseline.dcm", 60, "pydicom-data"),
        (store / "color3d_jpeg_baseline.dcm", 110, "pydicom-data"),
        (store / "OBXXXX1A.dcm", 0, "pydicom-data"),
        (own / "examples_palette.dcm", 0, "pydicom"),
        (own / "examples_rgb_color.dcm", 0, "pydicom"),
        (own / "examples_jpeg2k.dcm", 0, "pydicom"),
        (own / "ExplVR_BigEnd.dcm", 0, "pydicom"),
    ]
    for path, frame, group in specs:
        try:
            img = render_dicom(path, frame)
        except Exception as exc:  # noqa: BLE001 - a codec the machine lacks: skip the file
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
            continue
        b.add(Item(img.convert("RGB"), "medical", "dev" if group == "pydicom-data" else "heldout",
                   f"{group}:{path.name}[{frame}]/file", medical_caption(b, "US"),
                   group=group))  # fmt: skip


def _debian_package(path: Path) -> str:
    """The Debian package that installed ``path`` (``dpkg-query -S``), for the manifest."""
    try:
        out = subprocess.run(["dpkg-query", "-S", str(path)], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown package"
    return out.split(":", 1)[0]


def _wallpaper_photos() -> list[tuple[Path, str]]:
    """The real photographs among the installed Debian wallpapers (``WALLPAPER_PHOTOS``), each
    with the package that owns it, in a fixed order."""
    found: list[tuple[Path, str]] = []
    for patterns in WALLPAPER_PHOTOS.values():
        for pattern in patterns:
            found += [(p, _debian_package(p)) for p in sorted(BACKGROUNDS.glob(pattern))]
    return found


def build_grey_and_low_contrast_photos(b: Builder) -> None:
    """Greyscale, foggy and low-contrast copies of real photographs from new sources: the
    Debian wallpapers (photographs only) and OpenCV's stereo-calibration photos."""
    found = _wallpaper_photos()
    if not found:
        print("no Debian wallpapers (apt-get install mate-backgrounds ukui-wallpapers)")
    for i, (path, package) in enumerate(found):
        img = Image.open(path).convert("RGB")
        img.thumbnail((b.rng.choice([800, 1024, 1280]),) * 2, Image.LANCZOS)
        kind = ["colour", "grey", "fog", "lowcontrast"][i % 4]
        arr = np.asarray(img, dtype=np.float32)
        if kind == "grey":
            out = Image.fromarray(arr.mean(axis=2).astype(np.uint8))
        elif kind == "fog":  # haze: blend towards a light grey, lose the colour
            grey = arr.mean(axis=2, keepdims=True)
            mix = 0.55 * (0.3 * arr + 0.7 * grey) + 0.45 * 200
            out = Image.fromarray(np.clip(mix, 0, 255).astype(np.uint8))
        elif kind == "lowcontrast":
            grey = arr.mean(axis=2)
            out = Image.fromarray(
                np.clip(110 + 0.35 * (grey - grey.mean()), 0, 255).astype(np.uint8)
            )
        else:
            out = img
        split = "dev" if package == "mate-backgrounds" else "heldout"
        b.add(Item(out, "photo", split, f"debian-wallpapers:{path.name}/{kind} ({package})",
                   "a photo", fmt="jpg", group="debian-wallpapers"))  # fmt: skip
    if OPENCV_SAMPLES.exists():  # greyscale indoor photos of a person holding a chessboard
        for name in ["left02", "left05", "left08", "left12", "right03", "right07", "right13",
                     "leuvenB", "graf3", "aloeR", "basketball2"]:  # fmt: skip
            path = next(OPENCV_SAMPLES.glob(f"{name}.*"))
            img = Image.open(path).convert("RGB")
            b.add(Item(img, "photo", "heldout", f"opencv-doc:{name}", "a photo", fmt="jpg",
                       group="opencv-doc"))  # fmt: skip


def build_framed_photos(b: Builder) -> None:
    """The photographs among the Debian wallpapers again, each once, shown the way photographs
    are shown on black: on a black mount, letterboxed or pillarboxed to a screen's shape, or on a
    photo viewer's near-black backdrop with wide margins; every other one in greyscale. Black
    surrounds are otherwise almost all scans in this set, so without these a learned model may
    take any black surround for medical. The pictures inside the frames are those of the
    ``debian-wallpapers`` group (different sizes and crops, never a fog or low-contrast copy):
    left out on its own, this group tests the framing, not unseen photographs."""
    found = _wallpaper_photos()
    if not found:
        print("no Debian wallpapers for the framed photos (apt-get install mate-backgrounds)")
    for i, (path, package) in enumerate(found):
        img = Image.open(path).convert("RGB")
        img.thumbnail((b.rng.choice([480, 640, 800, 1024]),) * 2, Image.LANCZOS)
        w, h = img.size
        frac = b.rng.uniform(0.6, 1.0)
        cw, ch = int(w * frac), int(h * frac)
        x0, y0 = b.rng.randint(0, w - cw), b.rng.randint(0, h - ch)
        img = img.crop((x0, y0, x0 + cw, y0 + ch))
        if i % 2:
            img = img.convert("L").convert("RGB")
        style = ["mount", "letterbox", "viewer"][i % 3]
        if style == "mount":  # an even black border
            pad = int(min(cw, ch) * b.rng.uniform(0.04, 0.15))
            size, fill = (cw + 2 * pad, ch + 2 * pad), (0, 0, 0)
        elif style == "letterbox":  # bars to a screen's shape (16:9, 4:3 or square)
            ratio = b.rng.choice([16 / 9, 4 / 3, 1.0])
            size = (max(cw, int(ch * ratio)), max(ch, int(cw / ratio)))
            fill = (0, 0, 0)
        else:  # a photo viewer's dark backdrop, wide margins
            grey = b.rng.randint(16, 40)
            size, fill = (int(cw * 1.4), int(ch * 1.3)), (grey, grey, grey)
        canvas = Image.new("RGB", size, fill)
        canvas.paste(img, ((size[0] - cw) // 2, (size[1] - ch) // 2))
        tone = "grey" if i % 2 else "colour"
        b.add(Item(canvas, "photo", "heldout",
                   f"framed-photos:{path.name}/{style}/{tone} ({package})",
                   b.rng.choice(["a photo", "a photo in a black frame",
                                 "a black and white picture on a dark background"]),
                   fmt=b.rng.choice(["jpg", "png"]), group="framed-photos"))  # fmt: skip


MRICRON = Path("/usr/share/mricron")


def _mricron_lut(name: str) -> np.ndarray:
    """An MRIcron colour table: 768 bytes, 256 reds then 256 greens then 256 blues."""
    raw = np.frombuffer((MRICRON / "lut" / f"{name}.lut").read_bytes()[:768], dtype=np.uint8)
    return raw.reshape(3, 256).T.copy()


def _canonical(path: Path) -> np.ndarray:
    import nibabel as nib

    return np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj, dtype=np.float32)


def _slice(vol: np.ndarray, axis: int, where: float) -> np.ndarray:
    return np.rot90(np.take(vol, int(vol.shape[axis] * where), axis=axis))


def _window(sl: np.ndarray, lo_q: float, hi_q: float) -> np.ndarray:
    inside = sl[sl > 0] if np.any(sl > 0) else sl
    lo, hi = np.percentile(inside, (lo_q, hi_q))
    return _to_uint8(sl, float(lo), float(hi))


def build_mricron_templates(b: Builder) -> None:
    """Brain templates and atlases of Debian's ``mricron-data`` (BSD-3-clause, its copyright
    file): the Colin27 single-subject T1 ``ch2`` (with and without the skull), the INIA19
    macaque T1, shown as MRIcron shows them: grey slices in a few windows and zooms, a
    multi-slice montage, MRIcron's own colour tables on the anatomy and atlas labels (AAL,
    Brodmann, Harvard-Oxford, JHU white matter) drawn over it in their lookup-table colours."""
    templates = MRICRON / "templates"
    if not (templates / "ch2.nii.gz").exists():
        print("no MRIcron templates (apt-get install mricron-data)")
        return
    lic = "BSD-3-clause, Debian mricron-data"
    ch2 = _canonical(templates / "ch2.nii.gz")
    grey = [  # (volume, axis, where, window percentiles, zoom)
        ("ch2", 2, 0.45, (1, 99.5), 2), ("ch2", 2, 0.62, (5, 99), 2), ("ch2", 1, 0.5, (1, 99.5), 2),
        ("ch2", 0, 0.42, (0.5, 99.8), 2), ("ch2bet", 2, 0.55, (1, 99.5), 1),
        ("ch2better", 1, 0.45, (2, 98), 1), ("inia19-t1-brain", 2, 0.5, (1, 99.5), 2),
        ("inia19-t1-brain", 0, 0.5, (1, 99.5), 2),
    ]  # fmt: skip
    vols = {"ch2": ch2}
    for name, axis, where, (lo, hi), zoom in grey:
        if name not in vols:
            vols[name] = _canonical(templates / f"{name}.nii.gz")
        img = Image.fromarray(_window(_slice(vols[name], axis, where), lo, hi))
        img = img.resize((img.width * zoom, img.height * zoom), Image.BICUBIC)
        view = "sca"[axis]  # sagittal, coronal, axial
        b.add(Item(img, "medical", "heldout", f"mricron-data:{name}/{view}{where}/grey ({lic})",
                   medical_caption(b, "MR"), group="mricron-data"))  # fmt: skip
    # multi-slice montage, 2 rows of 4 axial slices on black (MRIcron's multislice view)
    tiles = [_window(_slice(ch2, 2, w), 1, 99.5) for w in np.linspace(0.3, 0.75, 8)]
    montage = np.vstack([np.hstack(tiles[:4]), np.hstack(tiles[4:])])
    b.add(Item(Image.fromarray(montage), "medical", "heldout",
               f"mricron-data:ch2/axial-montage/grey ({lic})", medical_caption(b, "MR"),
               group="mricron-data"))  # fmt: skip
    # MRIcron's colour tables applied to the anatomy
    for lut, axis, where in (("NIH", 2, 0.5), ("GE_color", 1, 0.55), ("HOTIRON", 0, 0.45)):
        rgb = _mricron_lut(lut)[_window(_slice(ch2, axis, where), 1, 99.5)]
        img = Image.fromarray(rgb).resize((rgb.shape[1] * 2, rgb.shape[0] * 2), Image.BICUBIC)
        b.add(Item(img, "medical", "heldout", f"mricron-data:ch2/{'sca'[axis]}{where}/{lut} ({lic})",
                   b.rng.choice(["a colour map of a brain scan", "a colorful brain image"]),
                   group="mricron-data"))  # fmt: skip
    # atlas labels over the anatomy, each in its own lookup table (or MRIcron's spectrum); FSL's
    # 182x218x182 MNI grid is one voxel larger than ch2's, so its last plane is dropped
    for base, atlas, lut, axis, where in [
        ("ch2", "aal", "aal.nii", 2, 0.55), ("ch2", "brodmann", "brodmann.nii", 1, 0.4),
        ("ch2", "HarvardOxford-cort-maxprob-thr0-1mm", "spectrum", 2, 0.6),
        ("ch2", "JHU-WhiteMatter-labels-1mm", "JHU-WhiteMatter-labels-1mm.nii", 0, 0.45),
        ("inia19-t1-brain", "inia19-NeuroMaps", "spectrum", 2, 0.55),
    ]:  # fmt: skip
        anatomy = vols[base]
        labels = _canonical(templates / f"{atlas}.nii.gz")
        if any(abs(x - y) > 1 for x, y in zip(labels.shape, anatomy.shape, strict=True)):
            continue
        labels = labels[tuple(slice(0, n) for n in anatomy.shape)]
        table = (_mricron_lut(lut) if (MRICRON / "lut" / f"{lut}.lut").exists()
                 else np.frombuffer((templates / f"{lut}.lut").read_bytes()[:768],
                                    dtype=np.uint8).reshape(3, 256).T)  # fmt: skip
        anat = _window(_slice(anatomy, axis, where), 1, 99.5).astype(np.float32)
        lab = _slice(labels, axis, where).astype(np.int64)
        colour = table[(lab * 37) % 255 + 1 if lut == "spectrum" else lab % 256].astype(np.float32)
        mix = np.where((lab > 0)[..., None], 0.5 * anat[..., None] + 0.5 * colour,
                       anat[..., None].repeat(3, axis=2))  # fmt: skip
        img = Image.fromarray(mix.astype(np.uint8))
        img = img.resize((img.width * 2, img.height * 2), Image.NEAREST)
        b.add(Item(img, "medical", "heldout",
                   f"mricron-data:{base}+{atlas}/{'sca'[axis]}{where} ({lic})",
                   b.rng.choice(["a brain atlas", "a colorful map of the brain",
                                 "an mri scan of the brain"]), group="mricron-data"))  # fmt: skip


GRACE_EXAMPLES = Path("/usr/share/doc/grace/examples")
# Grace's example plots that are charts of data; left out: the typesetting, font, arrow, axis-
# property and legend demos, the empty multi-graph page and the map of Australia
GRACE_CHARTS = [
    "bar", "boxplot", "chartebar", "charts", "co2", "fills", "hilo", "log2", "log2log", "logistic",
    "logit", "motif", "pie", "polar", "reciprocal", "spectrum", "stackedb", "terr", "test2",
    "times", "tinset", "tlog", "vmap", "xycolor", "xysize", "xyz",
]  # fmt: skip


def build_grace_charts(b: Builder) -> None:
    """Charts drawn by Grace (``gracebat``, Debian ``grace``, GPL-2+) from the example projects
    and data it ships, printed to PNG at its default page size."""
    gracebat = shutil.which("gracebat")
    if not gracebat or not GRACE_EXAMPLES.exists():
        print("no Grace (apt-get install grace)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name in GRACE_CHARTS:
            out = Path(tmp) / f"{name}.png"
            subprocess.run([gracebat, "-nosafe", "-hardcopy", "-hdevice", "PNG", "-printfile",
                            str(out), f"{name}.agr"], cwd=GRACE_EXAMPLES, capture_output=True,
                           timeout=60, check=False)  # fmt: skip
            if not out.exists():
                print(f"grace: no picture from {name}.agr", file=sys.stderr)
                continue
            img = Image.open(out).convert("RGB")
            fmt = "jpg" if b.rng.random() < 0.3 else "png"
            cap = b.rng.choice(NEUTRAL_CHART if b.rng.random() < 0.3 else
                               ["a graph of the data", "a chart with lines and points",
                                "a plot with labels"])  # fmt: skip
            b.add(Item(img, "chart", "heldout", f"grace:{name}.agr (GPL-2+, Debian grace)", cap,
                       fmt=fmt, group="grace"))  # fmt: skip


KDE_WALLPAPERS = Path("/usr/share/wallpapers")
# the photographs among Plasma's wallpapers (the rest are drawings and renderings), picked by
# looking at each once
KDE_PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
              "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]  # fmt: skip


def build_kde_wallpaper_photos(b: Builder) -> None:
    """Photographs among Debian's ``plasma-workspace-wallpapers`` (GPL-2+, KDE Visual Design
    Group), each once, at a wallpaper size of 800 to 1280 px."""
    found = [(n, sorted((KDE_WALLPAPERS / n / "contents" / "images").glob("*.*")))
             for n in KDE_PHOTOS]  # fmt: skip
    found = [(n, files) for n, files in found if files]
    if not found:
        print("no Plasma wallpapers (apt-get install plasma-workspace-wallpapers)")
        return
    for name, files in found:
        landscape = [f for f in files if f.stem.split("x")[0] > f.stem.split("x")[-1]] or files
        path = min(landscape, key=lambda f: abs(int(f.stem.split("x")[0]) - 1280))
        img = Image.open(path).convert("RGB")
        img.thumbnail((b.rng.choice([800, 1024, 1280]),) * 2, Image.LANCZOS)
        b.add(Item(img, "photo", "heldout",
                   f"kde-wallpapers:{name}/{path.name} (GPL-2+, Debian plasma-workspace-wallpapers)",
                   "a photo", fmt="jpg", group="kde-wallpapers"))  # fmt: skip


ITK_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
# the real scans among ITK's example data (MRI slices, some as its registration examples moved
# them, the Visible Woman cryosection colour photographs, rat lung CT, a T1 volume); the
# synthetic test pictures (circles, points, lines, FFT patterns, masks, shapes) are left out
ITK_SCANS = [
    ("BrainProtonDensitySlice.png", 2), ("BrainProtonDensitySlice256x256.png", 1),
    ("BrainProtonDensitySliceBorder20.png", 2), ("BrainProtonDensitySliceRotated10.png", 1),
    ("BrainProtonDensitySliceR10X13Y17S12.png", 2), ("BrainProtonDensitySliceBSplined10.png", 1),
    ("BrainT1Slice.png", 2), ("BrainT1SliceBorder20.png", 1), ("BrainMidSagittalSlice.png", 2),
    ("FatMRISlice.png", 2), ("VisibleWomanHeadSlice.png", 3), ("VisibleWomanEyeSlice.png", 3),
    ("RatLungSlice1.mha", 3), ("RatLungSlice2.mha", 2), ("itkBrainSliceComplexMagnitude.mha", 2),
    ("BrainProtonDensity3Slices.mha", 2), ("KmeansTest_T1UCharRaw.nii.gz", 3),
]  # fmt: skip


def read_metaimage(path: Path) -> np.ndarray:
    """A MetaImage (``.mha``/``.mhd``) with its pixels LOCAL or in a raw file beside it."""
    data = path.read_bytes()
    header: dict[str, str] = {}
    pos = 0
    while True:
        end = data.index(b"\n", pos)
        key, _, value = data[pos:end].decode().partition("=")
        header[key.strip()] = value.strip()
        pos = end + 1
        if key.strip() == "ElementDataFile":
            break
    dims = [int(v) for v in header["DimSize"].split()]
    dtype = {"MET_UCHAR": "u1", "MET_CHAR": "i1", "MET_USHORT": "u2", "MET_SHORT": "i2",
             "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}[header["ElementType"]]  # fmt: skip
    msb = (header.get("BinaryDataByteOrderMSB") or header.get("ElementByteOrderMSB")) == "True"
    raw = data[pos:] if header["ElementDataFile"] == "LOCAL" else \
        (path.parent / header["ElementDataFile"]).read_bytes()  # fmt: skip
    arr = np.frombuffer(raw, dtype=(">" if msb else "<") + dtype, count=int(np.prod(dims)))
    return arr.reshape(dims[::-1])


def build_itk_examples(b: Builder) -> None:
    """Scans among the example data of Debian's ``insighttoolkit5-examples`` (Apache-2.0, ITK's
    copyright file): shown in grey (colour for the cryosections) at a viewer's zoom."""
    import nibabel as nib

    if not ITK_DATA.exists():
        print("no ITK example data (apt-get install insighttoolkit5-examples)")
        return
    for name, zoom in ITK_SCANS:
        path = ITK_DATA / name
        if not path.exists():
            continue
        if name.endswith(".png"):
            img = Image.open(path)
            img = img.convert("RGB") if name.startswith("VisibleWoman") else img.convert("L")
        else:
            if name.endswith(".nii.gz"):  # through the axis with fewest voxels: the slices
                vol = np.asarray(nib.load(path).dataobj, dtype=np.float32)
                sl = _slice(vol, int(np.argmin(vol.shape)), 0.5)
            else:
                vol = read_metaimage(path)
                sl = vol if vol.ndim == 2 else vol[vol.shape[0] // 2]
            img = Image.fromarray(_window(np.asarray(sl, dtype=np.float32), 0.5, 99.5))
        img = img.resize((img.width * zoom, img.height * zoom), Image.BICUBIC)
        # the Visible Woman slices are colour photographs of a cryosectioned body
        also = ["photo"] if name.startswith("VisibleWoman") else []
        b.add(Item(img, "medical", "heldout",
                   f"insighttoolkit5-examples:{name} (Apache-2.0, Debian insighttoolkit5-examples)",
                   medical_caption(b, "MR"), also=also, group="insighttoolkit5-examples"))  # fmt: skip


DIPY_FILES = Path("/usr/lib/python3/dist-packages/dipy/data/files")


def build_dipy_data(b: Builder) -> None:
    """Diffusion MRI volumes that Debian's ``python3-dipy`` ships as test data (BSD-3, its
    copyright file): b0 and noise-test slices in grey at a viewer's zoom, plus the colour FA map
    of dipy's documentation (``python-dipy-doc``)."""
    if not DIPY_FILES.exists():
        print("no dipy data (apt-get install python3-dipy)")
        return
    picks = [("S0_10slices.nii.gz", [0.2, 0.5, 0.8]), ("aniso_vox.nii.gz", [0.4, 0.6]),
             ("ascm_out_test.nii.gz", [0.5]), ("test_piesno.nii.gz", [0.3, 0.7])]  # fmt: skip
    lic = "BSD-3, Debian python3-dipy"
    for name, wheres in picks:
        vol = _canonical(DIPY_FILES / name)
        vol = vol[..., 0] if vol.ndim == 4 else vol
        for where in wheres:
            sl = _window(_slice(vol, 2, where), 0.5, 99.5)
            zoom = max(2, 400 // max(sl.shape))
            img = Image.fromarray(sl).resize((sl.shape[1] * zoom, sl.shape[0] * zoom),
                                             Image.BICUBIC)  # fmt: skip
            b.add(Item(img, "medical", "heldout", f"dipy:{name}/a{where} ({lic})",
                       medical_caption(b, "MR"), group="dipy"))  # fmt: skip
    fa = Path("/usr/share/doc/python-dipy-doc/html/_images/colorfa.png")
    if fa.exists():
        b.add(Item(Image.open(fa).convert("RGB"), "medical", "heldout",
                   "dipy:doc/colorfa.png (BSD-3, Debian python-dipy-doc)",
                   "a colorful image of a brain", group="dipy"))  # fmt: skip


GNUCASH_HELP = Path("/usr/share/help/C")
# GnuCash's manual figures that are not a window or dialog: a diagram, two arrow icons, a crop of
# register symbols and crops of rendered report pages (cash flow, transaction and loan tables)
GNUCASH_NOT_WINDOWS = {
    "basics_AccountRelationships", "Tool_Lots_h_double_arrow", "Tool_Lots_v_double_arrow",
    "Trans_Assoc_Symbols", "cbook_CashFlow", "cbook_TransactionRptAssets",
    "cbook_TransactionRptExpenses", "cc_CashFlow", "cc_TransactionRptExpenses",
    "cc_TransactionRptVisa", "loans_PrivateLoanCalculation", "loans_PrivateLoanSecondPayment",
    "txns_CashFlow", "txns_TransactionRptChecking", "txns_TransactionRptExpenses",
}  # fmt: skip


def build_gnucash_doc_screenshots(b: Builder) -> None:
    """Screenshots in GnuCash's guide and help (Debian ``gnucash-docs``, GFDL 1.1+): GTK 2 and 3
    windows and dialogs of a finance program, taken by its writers on several desktops. Every
    fifth figure in name order (of 223 English ones), less ``GNUCASH_NOT_WINDOWS``."""
    files = sorted(GNUCASH_HELP.glob("gnucash-*/figures/*.png"))
    if not files:
        print("no GnuCash documentation (apt-get install gnucash-docs)")
        return
    files = [f for f in files if f.stem not in GNUCASH_NOT_WINDOWS][::5]
    for path in files:
        img = Image.open(path).convert("RGB")
        if min(img.size) < 48:
            continue
        also = ["chart"] if path.stem in {"invest_stockvalue_report", "Report_Screen"} else []
        b.add(Item(img, "screenshot", "heldout",
                   f"gnucash-docs:{path.parent.parent.name}/{path.name} (GFDL-1.1+, Debian gnucash-docs)",
                   b.rng.choice(WINDOW_CAPTIONS), also=also,
                   fmt="jpg" if b.rng.random() < 0.2 else "png", group="gnucash-docs"))  # fmt: skip


# gnuplot scripts over bundled data (scikit-learn's iris, wine, breast-cancer and linnerud tables,
# matplotlib's stock prices and Jacksboro elevation grid): name -> (data writer key, script)
GNUPLOT_CHARTS = {
    "iris-points": ("iris", "set title 'Iris'; set xlabel 'sepal length (cm)'; set ylabel "
                    "'sepal width (cm)'; plot for [k=0:2] D u ($5==k?$1:1/0):2 w p pt 7 "
                    "t word('setosa versicolor virginica', k+1)"),
    "wine-histogram": ("wine", "set style fill solid 0.6 border -1; set xlabel 'alcohol'; "
                       "set ylabel 'count'; bw=0.25; plot D u (bw*floor($1/bw)):(1) "
                       "smooth freq w boxes t 'wines'"),
    "linnerud-clustered": ("linnerud", "set style data histograms; set style histogram cluster "
                           "gap 1; set style fill solid border -1; set key top left; "
                           "plot D u 2 t 'Situps', '' u 3 t 'Jumps', '' u 1 t 'Chins'"),
    "linnerud-stacked": ("linnerud", "set style data histograms; set style histogram rowstacked; "
                         "set style fill pattern border -1; set boxwidth 0.7; plot D u 1 t "
                         "'Chins', '' u 3 t 'Jumps'"),
    "cancer-logscale": ("cancer", "set logscale xy; set grid; set xlabel 'mean area'; set ylabel "
                        "'mean concavity'; plot D u 4:7 w p pt 6 ps 0.8 t 'tumours'"),
    "cancer-boxplot": ("cancer", "set style fill solid 0.3; set xtics ('radius' 1, 'texture' 2, "
                       "'perimeter/5' 3); plot D u (1):1 w boxplot t '', '' u (2):2 w boxplot "
                       "t '', '' u (3):($3/5) w boxplot t ''"),
    "stocks-lines": ("stocks", "set xdata time; set timefmt '%Y-%m-%d'; set format x '%Y'; "
                     "set ylabel 'price (USD)'; set key top left; plot D u 1:2 w l t 'IBM', "
                     "'' u 1:4 w l t 'MSFT', '' u 1:9 w l t 'ADBE'"),
    "stocks-filled": ("stocks", "set xdata time; set timefmt '%Y-%m-%d'; set format x '%Y'; "
                      "set style fill transparent solid 0.4; plot D u 1:10 w filledcurves y1=0 "
                      "t 'S&P 500' noenhanced, '' u 1:2 w l lw 2 t 'IBM'"),
    "msft-candles": ("msft", "set xdata time; set timefmt '%d-%b-%y'; set format x '%d %b'; "
                     "set title 'MSFT'; set boxwidth 0.6 relative; plot D u 1:2:4:3:5 w "
                     "candlesticks t 'open/low/high/close'"),
    "dem-heatmap": ("dem", "set view map; set palette rgb 33,13,10; set cblabel 'elevation (m)'; "
                    "splot D matrix w image t ''"),
    "dem-surface": ("dem", "set hidden3d; set pm3d; set palette defined (0 'dark-green', 1 "
                    "'yellow', 2 'brown'); set xyplane 0; splot D matrix every 6:6 w l t ''"),
    "functions": ("none", "set grid; set key box; set xrange [-2*pi:2*pi]; plot sin(x) t 'sin', "
                  "cos(x) t 'cos', sin(x)*exp(-x*x/20) t 'damped'"),
}  # fmt: skip


def _gnuplot_data(key: str, folder: Path) -> Path:
    """Write one of the bundled tables as whitespace-separated columns for gnuplot."""
    import matplotlib.cbook as cbook
    import sklearn

    skdata = Path(sklearn.__file__).parent / "datasets" / "data"
    path = folder / f"{key}.dat"
    if key == "iris":
        np.savetxt(path, np.loadtxt(skdata / "iris.csv", delimiter=",", skiprows=1))
    elif key == "wine":
        np.savetxt(path, np.loadtxt(skdata / "wine_data.csv", delimiter=",", skiprows=1))
    elif key == "cancer":
        np.savetxt(path, np.loadtxt(skdata / "breast_cancer.csv", delimiter=",", skiprows=1))
    elif key == "linnerud":
        np.savetxt(path, np.loadtxt(skdata / "linnerud_exercise.csv", skiprows=1))
    elif key == "stocks":
        with open(cbook.get_sample_data("Stocks.csv", asfileobj=False)) as fh:
            lines = [ln.strip().split(",") for ln in fh if ln[:1].isdigit()]
        path.write_text("".join(" ".join(c or "NaN" for c in ln) + "\n" for ln in lines))
    elif key == "msft":
        with open(cbook.get_sample_data("msft.csv", asfileobj=False)) as fh:
            lines = [ln.strip().split(",") for ln in fh if ln[:1].isdigit()]
        path.write_text("".join(" ".join(ln) + "\n" for ln in lines))
    elif key == "dem":
        dem = np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))
        np.savetxt(path, dem["elevation"][::-1], fmt="%.1f")
    return path


def build_gnuplot_charts(b: Builder) -> None:
    """Charts drawn by gnuplot (Debian ``gnuplot-nox``; gnuplot's own licence, free) from the
    tables that scikit-learn and matplotlib ship: points, histograms, box plots, log scales,
    time series, candlesticks, a heat map and a surface; cairo and libgd terminals."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("no gnuplot (apt-get install gnuplot-nox)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, (name, (key, script)) in enumerate(GNUPLOT_CHARTS.items()):
            data = _gnuplot_data(key, folder) if key != "none" else folder / "none"
            out = folder / f"{name}.png"
            w, h = b.rng.choice([(640, 480), (800, 600), (900, 500), (560, 420)])
            term = (f"pngcairo size {w},{h} font 'DejaVu Sans,{b.rng.choice([9, 10, 11])}'"
                    if i % 3 else f"png size {w},{h}")  # fmt: skip
            full = f"set term {term}; set output '{out}'; D = '{data}'; {script}\n"
            subprocess.run([gnuplot], input=full, text=True, capture_output=True, timeout=60,
                           check=False)  # fmt: skip
            if not out.exists() or out.stat().st_size == 0:
                print(f"gnuplot: no picture for {name}", file=sys.stderr)
                continue
            img = Image.open(out).convert("RGB")
            cap = b.rng.choice(NEUTRAL_CHART if b.rng.random() < 0.3 else
                               ["a graph of the data", "a chart with lines and points",
                                "a plot with labels"])  # fmt: skip
            b.add(Item(img, "chart", "heldout", f"gnuplot:{name}/{term.split()[0]} (gnuplot "
                       "licence, Debian gnuplot-nox)", cap, fmt="jpg" if b.rng.random() < 0.3
                       else "png", group="gnuplot"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="var/risk_devset")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--skip-browser", action="store_true", help="no Chromium screenshots")
    parser.add_argument(
        "--windows", default="var/risk_windows",
        help="captured desktop windows (scripts/capture_desktop_windows.py); captured when missing",
    )  # fmt: skip
    args = parser.parse_args()
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    tmp = out / "html"
    tmp.mkdir()
    b = Builder(out=out, rng=random.Random(args.seed))
    build_photos(b)
    build_medical(b)
    build_charts(b)
    if not args.skip_browser:
        build_screenshots_and_html_charts(b, tmp)
    build_windows(b, Path(args.windows))
    build_colour_and_tiny_medical(b)
    build_nilearn_figures(b)
    build_more_ultrasound(b)
    build_grey_and_low_contrast_photos(b)
    build_doc_screenshots(b)
    # issue 15's second broadening (new sources, all held out); a separate random stream so that
    # everything above is the same whether or not these packages are installed
    b.rng = random.Random(args.seed + 1015)
    build_windows(b, Path(args.windows), new_toolkits=True)
    build_mricron_templates(b)
    build_grace_charts(b)
    build_kde_wallpaper_photos(b)
    build_itk_examples(b)
    build_dipy_data(b)
    build_gnucash_doc_screenshots(b)
    build_gnuplot_charts(b)
    # third broadening (risk-2.4): photographs on black; its own stream again
    b.rng = random.Random(args.seed + 2024)
    build_framed_photos(b)
    shutil.rmtree(tmp)
    with open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(b.rows[0]))
        writer.writeheader()
        writer.writerows(b.rows)
    for key in sorted(b.counter):
        print(f"{key:22s} {b.counter[key]:4d}")
    print(f"wrote {len(b.rows)} images and {out / 'labels.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
