"""Capture real desktop application windows under a virtual X server (Xvfb), for the risk set.

    python scripts/capture_desktop_windows.py --out DIR [--only gtk,qt,tk,x11]

Starts ``Xvfb`` on a free display, optionally a window manager (``twm`` or ``icewm``, for title
bars and borders), runs each program of ``programs()`` that is installed, waits for it to draw,
captures the screen with ``xwd`` and crops it to the top-most window (``xwininfo``: the one the
program opened last, its frame and title bar included). Writes ``DIR/<toolkit>-<name>.png`` and
``DIR/windows.csv`` (file, toolkit, program, window manager, theme, licence); with ``--only``
the other toolkits' rows already in ``windows.csv`` are kept. Programs come from Debian:

- ``x11-apps`` (X Consortium / MIT licence): xterm (``xterm``, MIT), xcalc and xedit (Athena
  widgets; a clock, a load meter or a logo alone is not a recognisable window);
- ``tk8.6`` (Tcl/Tk licence, BSD-style): the file, colour and message dialogs and a text
  widget of ``wish``; ``python3-tk``: ``python3 -m tkinter``;
- ``gtk-3-examples`` (LGPL-2.1+): ``gtk3-demo``, ``gtk3-widget-factory`` and
  ``gtk3-icon-browser``; ``zenity`` (LGPL-2+): GTK's file chooser, calendar, list, form, text,
  progress, colour and entry dialogs; each light and ``Adwaita:dark``;
- ``qtbase5-examples`` (BSD licence, the examples' own): widget, dialog, item-view and
  main-window examples.

- only when named in ``--only`` (issue 15's second broadening, kept out of a plain capture):
  Motif (``nedit``, GPL-2+ with Motif exception; ``xpdf``, GPL-2/3, on PDFs Debian ships;
  ``xmgrace`` of ``grace``, GPL-2+, on its examples), FOX (``xfe``, ``xfwrite``, ``xfimage``,
  ``xfpack`` of ``xfe``, GPL-2+) and FLTK (``fltk1.3-games``, LGPL-2+); ``--wms mwm,...`` puts
  them under Motif's window manager too.

Needs ``apt-get install xvfb x11-apps x11-utils xterm tk8.6 python3-tk gtk-3-examples zenity
qtbase5-examples twm icewm`` (and ``nedit xpdf grace xfe fltk1.3-games mwm`` for the above).
Programs that are not installed are skipped with a note; nothing is downloaded.
Captures run one program at a time (the X server and the program use about one core).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

QT_EXAMPLES = Path("/usr/lib/x86_64-linux-gnu/qt5/examples")
DOCS = "/usr/share/doc"

TK_SCRIPTS = {
    "open-dialog": f"wm withdraw .; tk_getOpenFile -initialdir {DOCS}/python3",
    "save-dialog": "wm withdraw .; tk_getSaveFile -initialdir /etc -initialfile notes.txt",
    "colour-dialog": "wm withdraw .; tk_chooseColor -initialcolor #3366cc",
    "message": "wm withdraw .; tk_messageBox -type yesnocancel -icon question "
    '-message "Save changes to the document before closing?" -detail "Your changes will be lost."',
    "text": "text .t -width 90 -height 34; pack .t -fill both -expand 1; "
    ".t insert end [exec cat /etc/services]; "
    "menu .m; . configure -menu .m; foreach x {File Edit Search View Help} {.m add cascade "
    "-label $x -menu [menu .m.[string tolower $x]]}",
    "widgets": "ttk::notebook .n; .n add [ttk::frame .n.a] -text General; .n add [ttk::frame "
    ".n.b] -text Advanced; pack .n -fill both -expand 1; foreach i {1 2 3 4 5 6} {ttk::checkbutton "
    '.n.a.c$i -text "Option number $i"; pack .n.a.c$i -anchor w}; ttk::treeview .n.a.t -columns '
    "{size kind}; foreach f [glob /usr/bin/a*] {.n.a.t insert {} end -text [file tail $f] "
    "-values [list [file size $f] file]}; pack .n.a.t -fill both -expand 1; ttk::button .n.a.ok "
    "-text OK; pack .n.a.ok -side right",
}


@dataclass(frozen=True)
class Program:
    toolkit: str
    name: str
    argv: tuple[str, ...]
    licence: str
    env: tuple[tuple[str, str], ...] = ()
    wait: float = 3.0
    script: str = ""  # written to a file whose path replaces "{script}" in argv
    home_files: tuple[tuple[str, str], ...] = ()  # (path under the fresh HOME, text): settings


def programs() -> list[Program]:
    x11 = "MIT/X11 (Debian x11-apps)"
    out = [
        Program(
            "x11",
            "xterm-ls",
            ("xterm", "-geometry", "100x40", "-hold", "-e", "ls", "-la", "/usr/lib"),
            "MIT (Debian xterm)",
        ),  # fmt: skip
        Program(
            "x11",
            "xterm-dark",
            (
                "xterm",
                "-bg",
                "black",
                "-fg",
                "grey80",
                "-geometry",
                "120x32",
                "-hold",
                "-e",
                "python3",
                "-c",
                "help('collections')",
            ),
            "MIT (Debian xterm)",
        ),  # fmt: skip
        Program(
            "x11",
            "xterm-ps",
            ("xterm", "-geometry", "80x24", "-hold", "-e", "ps", "aux"),
            "MIT (Debian xterm)",
        ),  # fmt: skip
        Program("x11", "xcalc", ("xcalc",), x11),
        Program("x11", "xedit", ("xedit", "/etc/services"), x11),
    ]
    for name, script in TK_SCRIPTS.items():
        out.append(Program("tk", name, ("wish", "{script}"), "Tcl/Tk licence (Debian tk8.6)",
                           script=script))  # fmt: skip
    out.append(Program("tk", "python-tkinter", ("python3", "-m", "tkinter"),
                       "PSF licence (Debian python3-tk)"))  # fmt: skip
    gtk = "LGPL-2.1+ (Debian gtk-3-examples)"
    zenity = "LGPL-2+ (Debian zenity)"
    services = "/etc/services"
    gtk_programs = [
        ("demo", ("gtk3-demo",), gtk),
        ("widget-factory", ("gtk3-widget-factory",), gtk),
        ("icon-browser", ("gtk3-icon-browser",), gtk),
        ("file-chooser", ("zenity", "--file-selection", f"--filename={DOCS}/"), zenity),
        ("calendar", ("zenity", "--calendar", "--text=Pick a date"), zenity),
        ("list", ("zenity", "--list", "--title=Packages", "--column=Name", "--column=Version",
                  "--column=Size",
                  *[v for i in range(18) for v in (f"lib{i}", f"1.{i}", f"{i}0 kB")]),
         zenity),
        ("question", ("zenity", "--question", "--text=Overwrite the existing file?"), zenity),
        ("forms", ("zenity", "--forms", "--title=New account", "--add-entry=Name",
                   "--add-entry=Email", "--add-password=Password", "--add-calendar=Birthday"),
         zenity),
        ("text-info", ("zenity", "--text-info", f"--filename={services}", "--width=700",
                       "--height=500"), zenity),
        ("progress", ("zenity", "--progress", "--text=Copying files", "--percentage=40"), zenity),
        ("colour", ("zenity", "--color-selection"), zenity),
        ("entry", ("zenity", "--entry", "--text=Folder name"), zenity),
        ("scale", ("zenity", "--scale", "--text=Volume", "--value=30"), zenity),
    ]  # fmt: skip
    for name, argv, licence in gtk_programs:
        for theme in ("Adwaita", "Adwaita:dark"):
            out.append(Program("gtk", f"{name}-{theme.replace(':', '-')}", argv, licence,
                               env=(("GTK_THEME", theme),)))  # fmt: skip
    qt = "BSD (Qt examples, Debian qtbase5-examples)"
    for rel in ("widgets/dialogs/standarddialogs/standarddialogs",
                "widgets/dialogs/tabdialog/tabdialog", "widgets/dialogs/findfiles/findfiles",
                "widgets/dialogs/classwizard/classwizard", "widgets/dialogs/extension/extension",
                "widgets/mainwindows/application/application", "widgets/mainwindows/menus/menus",
                "widgets/mainwindows/mainwindow/mainwindow", "widgets/mainwindows/mdi/mdi",
                "widgets/mainwindows/dockwidgets/dockwidgets",
                "widgets/itemviews/dirview/dirview", "widgets/itemviews/spreadsheet/spreadsheet",
                "widgets/itemviews/addressbook/addressbook",
                "widgets/itemviews/editabletreemodel/editabletreemodel",
                "widgets/itemviews/frozencolumn/frozencolumn",
                "widgets/itemviews/stardelegate/stardelegate",
                "widgets/widgets/calculator/calculator",
                "widgets/widgets/calendarwidget/calendarwidget",
                "widgets/widgets/styles/styles", "widgets/widgets/lineedits/lineedits",
                "widgets/widgets/groupbox/groupbox", "widgets/widgets/sliders/sliders",
                "widgets/layouts/basiclayouts/basiclayouts", "widgets/richtext/textedit/textedit",
                "widgets/richtext/syntaxhighlighter/syntaxhighlighter",
                "widgets/tools/settingseditor/settingseditor",
                "widgets/tools/regularexpression/regularexpression",
                "sql/querymodel/querymodel", "sql/masterdetail/masterdetail",
                "network/http/http", "widgets/desktop/screenshot/screenshot"):  # fmt: skip
        out.append(Program("qt", rel.rsplit("/", 1)[1], (str(QT_EXAMPLES / rel),), qt,
                           env=(("QT_QPA_PLATFORM", "xcb"),)))  # fmt: skip
    out += more_programs()
    return out


# Toolkits added for issue 15's broadened check (Motif, FOX, FLTK): captured only when asked for
# by name (``--only motif,fox,fltk``), so that a plain capture gives the windows it always gave.
NEW_TOOLKITS = ("motif", "fox", "fltk")
GRACE_EXAMPLES = Path("/usr/share/doc/grace/examples")


def more_programs() -> list[Program]:
    """Motif (``nedit``, ``xpdf``, ``xmgrace``), FOX (``xfe`` and its editor, image viewer and
    package viewer) and FLTK (``fltk1.3-games``) programs; every one starts offline."""
    nedit = "GPL-2+ with Motif exception (Debian nedit)"
    xpdf = "GPL-2 or GPL-3 (Debian xpdf)"
    grace = "GPL-2+ (Debian grace)"
    xfe = "GPL-2+ (Debian xfe)"
    fltk = "LGPL-2+ with static linking exception (Debian fltk1.3-games)"
    # the captures run as root: without this Xfe's first window is its "Running Xfe as root!" box
    xferc = ((".config/xfe/xferc", "[OPTIONS]\nroot_warn=0\n"),)
    wall = "/usr/share/wallpapers/{}/contents/images/1280x800.jpg"
    pdfs = ["/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
            "/usr/share/doc/libtasn1-doc/libtasn1.pdf"]  # fmt: skip
    return [
        Program("motif", "nedit-services", ("nedit", "/etc/services"), nedit),
        Program("motif", "nedit-python", ("nedit", "/usr/lib/python3.11/textwrap.py"), nedit),
        Program(
            "motif",
            "nedit-two",
            ("nedit", "-geometry", "100x45", "/etc/passwd", "/etc/protocols"),
            nedit,
        ),  # fmt: skip
        Program("motif", "xpdf-spec", ("xpdf", "-g", "800x860", pdfs[0]), xpdf, wait=4.0),
        Program("motif", "xpdf-manual-p3", ("xpdf", "-g", "700x800", pdfs[1], "3"), xpdf, wait=4.0),
        Program(
            "motif",
            "xpdf-fullwidth",
            ("xpdf", "-g", "1000x700", "-z", "width", pdfs[1], "9"),
            xpdf,
            wait=4.0,
        ),  # fmt: skip
        Program("motif", "xmgrace-empty", ("xmgrace",), grace, wait=4.0),
        Program(
            "motif", "xmgrace-co2", ("xmgrace", str(GRACE_EXAMPLES / "co2.agr")), grace, wait=4.0
        ),  # fmt: skip
        Program(
            "motif", "xmgrace-bar", ("xmgrace", str(GRACE_EXAMPLES / "bar.agr")), grace, wait=4.0
        ),  # fmt: skip
        Program("fox", "xfe-doc", ("xfe", "/usr/share/doc"), xfe, wait=4.0, home_files=xferc),
        Program("fox", "xfe-bin", ("xfe", "/usr/bin"), xfe, wait=4.0, home_files=xferc),
        Program("fox", "xfe-etc", ("xfe", "/etc"), xfe, wait=4.0, home_files=xferc),
        Program(
            "fox", "xfwrite-services", ("xfwrite", "/etc/services"), xfe, wait=4.0, home_files=xferc
        ),
        Program(
            "fox",
            "xfwrite-python",
            ("xfwrite", "/usr/lib/python3.11/csv.py"),
            xfe,
            wait=4.0,
            home_files=xferc,
        ),
        Program(
            "fox",
            "xfimage-forest",
            ("xfimage", wall.format("Path")),
            xfe,
            wait=4.0,
            home_files=xferc,
        ),
        Program(
            "fox", "xfimage-boats", ("xfimage", wall.format("EveningGlow")), xfe, wait=4.0
        ),  # fmt: skip
        Program("fox", "xfpack", ("xfpack",), xfe, wait=4.0, home_files=xferc),
        Program("fltk", "flsudoku", ("/usr/games/flsudoku",), fltk),
        Program("fltk", "flcheckers", ("/usr/games/flcheckers",), fltk),
        Program("fltk", "flblocks", ("/usr/games/flblocks",), fltk),
    ]


def read_xwd(data: bytes) -> Image.Image:
    """Decode an ``xwd`` dump of a 24/32-bit TrueColor screen (what Xvfb -screen WxHx24 gives)."""
    head = struct.unpack(">25I", data[:100])
    header_size, _, _, _, width, height = head[:6]
    byte_order, bpp, bytes_per_line, ncolors = head[7], head[11], head[12], head[19]
    if bpp not in (24, 32):
        raise ValueError(f"xwd with {bpp} bits per pixel")
    start = header_size + 12 * ncolors
    raw = np.frombuffer(data, dtype=np.uint8, count=bytes_per_line * height, offset=start)
    k = bpp // 8
    px = raw.reshape(height, bytes_per_line)[:, : width * k].reshape(height, width, k)
    # LSBFirst: blue, green, red (, pad); MSBFirst: (pad,) red, green, blue
    rgb = px[..., [2, 1, 0]] if byte_order == 0 else px[..., [k - 3, k - 2, k - 1]]
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


class Display:
    """An Xvfb server (and a window manager) for the duration of a ``with`` block."""

    def __init__(self, size: tuple[int, int], wm: str | None) -> None:
        self.size, self.wm = size, wm
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Display:
        for n in range(91, 140):
            if not Path(f"/tmp/.X{n}-lock").exists():  # noqa: S108 - where X servers lock
                self.name = f":{n}"
                break
        w, h = self.size
        self.procs.append(subprocess.Popen(
            ["Xvfb", self.name, "-screen", "0", f"{w}x{h}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        time.sleep(1.0)
        if self.wm and shutil.which(self.wm):
            argv = [self.wm]
            if self.wm == "twm":  # twm waits for a click to place each window unless told not to
                rc = Path(tempfile.mkdtemp()) / "twmrc"
                rc.write_text('RandomPlacement\nUsePPosition "on"\nNoGrabServer\n')
                argv += ["-f", str(rc)]
            self.procs.append(subprocess.Popen(
                argv, env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ))  # fmt: skip
            time.sleep(1.0)
        return self

    def env(self, extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"GTK_THEME", "WAYLAND_DISPLAY"}}
        env.update(DISPLAY=self.name, NO_AT_BRIDGE="1", LANG="C.UTF-8", **dict(extra))
        return env

    def capture(self) -> Image.Image:
        dump = subprocess.run(["xwd", "-root", "-silent"], env=self.env(), capture_output=True,
                              check=True, timeout=30).stdout  # fmt: skip
        return read_xwd(dump)

    def __exit__(self, *exc: object) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def top_window(display: Display, screen: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Box (x, y, w, h) of the top-most viewable top-level window, frame included: the one the
    program opened last (a demo over its launcher, a dialog over its parent). Panels and task
    bars (under 60 px high) and windows covering the whole screen are passed over."""
    tree = subprocess.run(["xwininfo", "-root", "-children"], env=display.env(),
                          capture_output=True, text=True, timeout=20).stdout  # fmt: skip
    ids = re.findall(r"^\s+(0x[0-9a-f]+) ", tree, flags=re.MULTILINE)
    for wid in reversed(ids):  # listed bottom to top
        info = subprocess.run(["xwininfo", "-id", wid], env=display.env(), capture_output=True,
                              text=True, timeout=20).stdout  # fmt: skip
        if "IsViewable" not in info:
            continue
        v = {k: int(n) for k, n in re.findall(r"(Absolute upper-left [XY]|Width|Height):\s+(-?\d+)",
                                              info)}  # fmt: skip
        x, y, w, h = v["Absolute upper-left X"], v["Absolute upper-left Y"], v["Width"], v["Height"]
        if h < 60 or w < 60 or (w >= screen[0] and h >= screen[1]):
            continue
        x0, y0 = max(0, x), max(0, y)
        return x0, y0, min(screen[0], x + w) - x0, min(screen[1], y + h) - y0
    return None


def run_one(display: Display, prog: Program, screen: tuple[int, int]) -> Image.Image | None:
    with tempfile.TemporaryDirectory() as home:
        env = display.env(prog.env) | {"HOME": home, "XDG_RUNTIME_DIR": home}
        argv = list(prog.argv)
        if prog.script:
            (Path(home) / "script.tcl").write_text(prog.script)
            argv = [str(Path(home) / "script.tcl") if a == "{script}" else a for a in argv]
        for rel, text in prog.home_files:
            (Path(home) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(home) / rel).write_text(text)
        proc = subprocess.Popen(argv, env=env, cwd=home, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(prog.wait)
        try:
            if proc.poll() is not None:
                return None
            box = top_window(display, screen)
            if box is None:
                return None
            x, y, w, h = box
            return display.capture().crop((x, y, x + w, y + h))
        except (subprocess.SubprocessError, ValueError, KeyError) as exc:
            print(f"capture of {prog.toolkit}/{prog.name} failed: {exc}", file=sys.stderr)
            return None
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
            time.sleep(0.3)  # let the window go before the next program draws


def capture_all(out: Path, only: set[str] | None, wms: tuple[str | None, ...]) -> list[dict]:
    """Capture every installed program once, the programs taking turns over the window managers
    (one X server per window manager, programs one after another)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    screen = (1280, 900)
    chosen = [p for p in programs()
              if (p.toolkit in only if only else p.toolkit not in NEW_TOOLKITS)]  # fmt: skip
    for k, wm in enumerate(wms):
        with Display(screen, wm) as display:
            for prog in chosen[k :: len(wms)]:
                if not shutil.which(prog.argv[0]) and not Path(prog.argv[0]).exists():
                    print(f"skipped {prog.toolkit}/{prog.name}: no {prog.argv[0]}", file=sys.stderr)
                    continue
                shot = run_one(display, prog, screen)
                if shot is None or min(shot.size) < 48:
                    print(f"no window from {prog.toolkit}/{prog.name}", file=sys.stderr)
                    continue
                name = f"{prog.toolkit}-{prog.name}.png"
                shot.save(out / name)
                rows.append({"file": name, "toolkit": prog.toolkit,
                             "program": " ".join(prog.argv[:2]), "wm": wm or "none",
                             "theme": dict(prog.env).get("GTK_THEME", ""),
                             "licence": prog.licence,
                             "size": f"{shot.width}x{shot.height}"})  # fmt: skip
                print(f"{name:50s} {shot.width}x{shot.height} wm={wm or 'none'}", flush=True)
    listing = out / "windows.csv"
    if only and listing.exists():
        with open(listing, newline="") as fh:
            rows += [r for r in csv.DictReader(fh) if r["toolkit"] not in only]
    rows.sort(key=lambda r: r["file"])
    with open(listing, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "toolkit", "program", "wm", "theme",
                                                "licence", "size"])  # fmt: skip
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--only",
        default="",
        help="toolkits, comma-separated (gtk,qt,tk,x11; motif,fox,fltk only by name)",
    )
    parser.add_argument(
        "--wms",
        default="twm,none,icewm",
        help="window managers the programs take turns over (mwm: Motif's)",
    )
    args = parser.parse_args()
    if not shutil.which("Xvfb") or not shutil.which("xwd"):
        print("needs Xvfb and xwd: apt-get install xvfb x11-apps", file=sys.stderr)
        return 1
    only = set(filter(None, args.only.split(","))) or None
    wms = tuple(None if w == "none" else w for w in args.wms.split(","))
    rows = capture_all(Path(args.out), only, wms)
    print(f"captured {len(rows)} windows into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
