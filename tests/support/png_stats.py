#!/usr/bin/env python3
"""Decodes a PNG (8-bit RGB or RGBA, non-interlaced, as Chromium writes screenshots) with the
standard library only and prints JSON: width, height, the share of pixels that are not near
white, and how many distinct colours (quantised to 5 bits per channel) appear."""
import json
import struct
import sys
import zlib

data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG")
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    (length,) = struct.unpack(">I", data[pos:pos + 4])
    kind = data[pos + 4:pos + 8]
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
width, height, depth, colour, _, _, interlace = ihdr
if depth != 8 or colour not in (2, 6) or interlace:
    sys.exit(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
bpp = 3 if colour == 2 else 4
raw = zlib.decompress(idat)
stride = width * bpp
prev = bytearray(stride)
nonwhite, colours, i = 0, set(), 0
for _ in range(height):
    f = raw[i]
    line = bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1:
            line[x] = (line[x] + a) & 255
        elif f == 2:
            line[x] = (line[x] + b) & 255
        elif f == 3:
            line[x] = (line[x] + ((a + b) >> 1)) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[x] = (line[x] + pred) & 255
    for x in range(0, stride, bpp):
        r, g, b_ = line[x], line[x + 1], line[x + 2]
        if min(r, g, b_) < 235:
            nonwhite += 1
        colours.add((r >> 3, g >> 3, b_ >> 3))
    prev = line
print(json.dumps({"width": width, "height": height, "nonwhite": nonwhite / (width * height),
                  "colours": len(colours)}))
