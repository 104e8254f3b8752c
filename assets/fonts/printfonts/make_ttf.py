#!/usr/bin/python3
"""Make TrueType-outline copies of the bundled Noto Sans CJK JP faces for app/printout.

The PDF writer (github.com/signintech/gopdf v0.33.0) embeds only TrueType ('glyf') outlines and
rejects the CFF outlines of the bundled OpenType files ("Unrecognized file (font) format"); so
does github.com/go-pdf/fpdf v0.9.0. This script converts each face once, offline:

  1. subset to every code point in the face's cmap (nothing a name or address may use is lost)
     but without layout features: the PDF writer maps characters through the cmap only and
     never applies GSUB, so glyphs reachable only through GSUB (vertical forms, alternates)
     and hinting are dropped;
  2. convert the cubic CFF outlines to quadratic TrueType outlines with fontTools' cu2qu
     (maximum error 1 font unit of 1000, invisible at print sizes).

Usage (from the repository root; needs python3-fonttools):
    /usr/bin/python3 assets/fonts/printfonts/make_ttf.py

The result is a Modified Version under the SIL Open Font License 1.1 (keep
assets/fonts/LICENSE-OFL.txt with it). It is renamed "Madoguchi Print JP": the licence's Reserved
Font Name is "Source" and "Noto" is Google's trademark, so a modified font carries neither.
"""
import os
import sys

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

MAX_ERR = 1.0  # font units (1000 per em)
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..")


def subset_font(font):
    opts = subset.Options()
    opts.layout_features = []
    opts.hinting = False
    opts.notdef_outline = True
    opts.name_IDs = ["*"]
    opts.name_languages = ["*"]
    opts.glyph_names = False
    opts.drop_tables += ["VORG", "vhea", "vmtx", "BASE", "GSUB", "GPOS", "GDEF"]
    s = subset.Subsetter(opts)
    s.populate(unicodes=font.getBestCmap().keys())
    s.subset(font)


def to_quadratic(font):
    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = {}
    for name in glyph_order:
        tt_pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(tt_pen, MAX_ERR, reverse_direction=True))
        glyf.glyphs[name] = tt_pen.glyph()
    del font["CFF "]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, glyph in glyf.glyphs.items():
        advance, _ = hmtx.metrics[name]
        hmtx.metrics[name] = (advance, glyph.xMin if hasattr(glyph, "xMin") else 0)
    maxp = font["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones",):
        setattr(maxp, attr, 1)
    for attr in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, attr, 0)
    maxp.compile(font)
    post = font["post"]
    post.formatType = 3.0  # no glyph names: the PDF writer does not need them
    post.extraNames, post.mapping = [], {}
    font.sfntVersion = "\000\001\000\000"


def rename(font, style):
    family = "Madoguchi Print JP"
    full = family + ("" if style == "Regular" else " " + style)
    ps = "MadoguchiPrintJP-" + style
    name = font["name"]
    for rec in list(name.names):
        if rec.nameID in (1, 3, 4, 6, 16, 17):
            name.removeNames(nameID=rec.nameID)
    for nid, value in ((1, family), (2, style), (3, ps), (4, full), (6, ps)):
        name.setName(value, nid, 3, 1, 0x409)
        name.setName(value, nid, 1, 0, 0)


def main():
    for style in sys.argv[1:] or ["Regular", "Bold"]:
        src = os.path.join(SRC, "NotoSansCJKjp-%s.otf" % style)
        dst = os.path.join(HERE, "MadoguchiPrintJP-%s.ttf" % style)
        font = TTFont(src)
        subset_font(font)
        to_quadratic(font)
        rename(font, style)
        font.save(dst)
        print(dst, os.path.getsize(dst), "bytes,", len(font.getGlyphOrder()), "glyphs")


if __name__ == "__main__":
    main()
