"""Chinese text in charts on any machine: the font allocator ships (fonts/, a GB 2312 subset
of Noto Sans CJK SC under the SIL Open Font License) for matplotlib, and the few glyphs a
report uses, embedded in it as a web font (no file or network access when it is opened).

Characters outside GB 2312 fall back, glyph by glyph, to a CJK font of the machine.
"""

from __future__ import annotations

import base64
import functools
import io
from pathlib import Path

FONT_FILE = Path(__file__).resolve().parent / "fonts" / "AllocatorCJK-Regular.otf"
FAMILY = "Allocator CJK Sans"
#: CJK fonts found on common machines, preferred over ours when present (fuller coverage)
SYSTEM_CJK = ("Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "Source Han Sans SC",
              "WenQuanYi Micro Hei", "SimHei")


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x2E80 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF
            or 0x3000 <= o <= 0x303F or 0x20000 <= o <= 0x2FA1F)


@functools.lru_cache(maxsize=1)
def _cmap() -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(FONT_FILE, lazy=True).getBestCmap())


def web_font_css(text: str) -> str:
    """An @font-face rule embedding the glyphs of `text`'s CJK characters (WOFF, base64),
    limited by unicode-range to those characters; '' when there are none."""
    chars = sorted({c for c in text if is_cjk(c) and ord(c) in _cmap()})
    if not chars:
        return ""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(FONT_FILE)
    opts = subset.Options()
    opts.flavor = "woff"
    opts.layout_features = []
    opts.hinting = False
    opts.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]
    sub = subset.Subsetter(opts)
    sub.populate(text="".join(chars))
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    ranges = ", ".join(f"U+{ord(c):X}" for c in chars)
    return (f'@font-face {{ font-family: "{FAMILY}"; font-style: normal; font-weight: 400; '
            f'src: url(data:font/woff;base64,{data}) format("woff"); '
            f"unicode-range: {ranges}; }}")


def css_font_stack() -> str:
    """The report's font-family: our embedded CJK glyphs first (their unicode-range leaves
    every other character to the next fonts; listed after a Latin font, Chromium on Linux
    drew some headings with the Latin font's empty boxes), a Latin sans, then the machine's
    CJK fonts for anything beyond GB 2312."""
    latin = '"Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans"'
    system = ", ".join(f'"{f}"' for f in SYSTEM_CJK)
    return f'"{FAMILY}", {latin}, {system}, sans-serif'


def mono_font_stack() -> str:
    """Fixed-width text (the policy): our CJK glyphs first too, then monospace fonts."""
    system = ", ".join(f'"{f}"' for f in SYSTEM_CJK)
    return f'"{FAMILY}", Consolas, "DejaVu Sans Mono", "Liberation Mono", {system}, monospace'


def matplotlib_fonts() -> list[str]:
    """Register the shipped font with matplotlib and return the family list to use: DejaVu
    Sans (Latin), the machine's CJK fonts, then ours; matplotlib falls back glyph by glyph."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    if FAMILY not in names and FONT_FILE.is_file():
        font_manager.fontManager.addfont(str(FONT_FILE))
    return ["DejaVu Sans", *[f for f in SYSTEM_CJK if f in names], FAMILY]
