"""Make allocator/output/fonts/AllocatorCJK-Regular.otf: Noto Sans CJK SC Regular (SIL Open
Font License 1.1) cut down to the GB 2312 character set (6,763 hanzi and its symbols),
ASCII, CJK punctuation and full-width forms, renamed "Allocator CJK Sans" so it never
shadows a full Noto Sans CJK installed on the machine.

It lets matplotlib draw Chinese in PNG charts on a machine with no CJK font, and the HTML
report embed the few glyphs it uses. Run once, by hand, when the font is to be rebuilt:

    apt-get download fonts-noto-cjk && dpkg-deb -x fonts-noto-cjk_*.deb noto
    python tools/make_cjk_font.py noto/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

(fontTools comes with matplotlib.) The licence travels with the font: OFL.txt beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

OUT = Path(__file__).resolve().parent.parent / "allocator" / "output" / "fonts"
FAMILY = "Allocator CJK Sans"
SC_FACE = 2  # NotoSansCJK-Regular.ttc: JP, KR, SC, TC, HK


def gb2312() -> set[str]:
    """Every character of GB 2312 (rows 0xA1-0xF7, cells 0xA1-0xFE)."""
    out = set()
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return out


def main(ttc: str) -> None:
    font = TTFont(ttc, fontNumber=SC_FACE)
    opts = subset.Options()
    opts.layout_features = ["vert", "vrt2"]
    opts.hinting = False
    opts.notdef_outline = True
    opts.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]
    sub = subset.Subsetter(opts)
    codes = {ord(c) for c in gb2312()} | set(range(0x20, 0x7F)) | set(range(0x3000, 0x3040)) \
        | set(range(0xFF00, 0xFFF0)) | {0x00B7, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026}
    sub.populate(unicodes=sorted(codes))
    sub.subset(font)
    name = font["name"]
    for rec in list(name.names):
        if rec.nameID in (1, 4, 16):
            name.setName(FAMILY if rec.nameID != 4 else f"{FAMILY} Regular", rec.nameID,
                         rec.platformID, rec.platEncID, rec.langID)
        elif rec.nameID == 6:
            name.setName("AllocatorCJKSans-Regular", 6, rec.platformID, rec.platEncID,
                         rec.langID)
        elif rec.nameID == 3:
            name.setName(f"{FAMILY} (subset of Noto Sans CJK SC)", 3, rec.platformID,
                         rec.platEncID, rec.langID)
    if "CFF " in font:  # the CFF table carries its own font name
        cff = font["CFF "].cff
        cff.fontNames = ["AllocatorCJKSans-Regular"]
        top = cff.topDictIndex[0]
        top.FamilyName, top.FullName = FAMILY, f"{FAMILY} Regular"
    OUT.mkdir(parents=True, exist_ok=True)
    font.save(OUT / "AllocatorCJK-Regular.otf")
    print(f"wrote {OUT / 'AllocatorCJK-Regular.otf'} ({len(codes):,} code points)")


if __name__ == "__main__":
    main(sys.argv[1])
