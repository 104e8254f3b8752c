#!/usr/bin/python3
"""Extract the Japanese faces of Noto Sans CJK from Debian's TTC collections.

Fyne cannot load a TrueType/OpenType *collection* (TTC): it reports
"collections not allowed" and then crashes. Debian's fonts-noto-cjk ships Noto
Sans CJK only as TTCs, so this script copies the face whose name table says
"Noto Sans CJK JP" out of each collection into a single-face OTF file, unchanged
otherwise (SIL OFL 1.1: the font is redistributed with its licence,
LICENSE-OFL.txt, and keeps its name because it is not modified).

Run from anywhere:  /usr/bin/python3 assets/fonts/extract.py
Needs Debian packages fonts-noto-cjk and python3-fonttools.
"""

import os
import sys

from fontTools.ttLib import TTCollection

SOURCES = {
    "NotoSansCJKjp-Regular.otf": "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "NotoSansCJKjp-Bold.otf": "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
}
FAMILY = "Noto Sans CJK JP"  # name ID 1 (family) of the wanted face


def family_name(font):
    """Return the family name (name ID 1) of a face, preferring the English record."""
    for record in font["name"].names:
        if record.nameID == 1 and record.platformID == 3 and record.langID == 0x409:
            return record.toUnicode()
    name = font["name"].getName(1, 3, 1)
    return name.toUnicode() if name else ""


def extract(ttc_path, out_path):
    collection = TTCollection(ttc_path)
    for font in collection.fonts:
        if family_name(font) == FAMILY:
            font.save(out_path)
            return
    sys.exit("extract: no face %r in %s (found %s)" % (
        FAMILY, ttc_path, [family_name(f) for f in collection.fonts]))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for out_name, ttc_path in SOURCES.items():
        out_path = os.path.join(here, out_name)
        extract(ttc_path, out_path)
        print("wrote %s (%d bytes)" % (out_path, os.path.getsize(out_path)))


if __name__ == "__main__":
    main()
