#!/usr/bin/env python3
"""make_corpus.py: write the seed corpus of the fuzzers (docs/fuzzing.md).

    python3 tests/fuzz/make_corpus.py     # rewrites tests/fuzz/corpus/*/

Small valid files, a few hundred bytes each, that reach each reader's main
paths; the fuzzers mutate from there. Standard library only: safetensors, IDX,
PNG, GIF, PNM and HDR are written by hand here; BMP, TGA and JPEG by the
stb_image_write in Debian's libstb.so (the library the runtime links), through
ctypes. Deterministic: the same bytes every time.
"""
import ctypes
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(sub, name, data):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors: the layout lg_st_write writes -----------------------------
def safetensors(tensors, meta=None, raw_header=None):
    """tensors: [(name, shape, [floats])] -> file bytes, packed in name order."""
    parts, blobs, off = [], [], 0
    if meta:
        parts.append('"__metadata__":' + json.dumps(dict(sorted(meta.items())),
                                                     separators=(",", ":")))
    for name, shape, vals in sorted(tensors):
        blob = struct.pack("<%df" % len(vals), *vals)
        parts.append('%s:{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}'
                     % (json.dumps(name), ",".join(map(str, shape)), off, off + len(blob)))
        blobs.append(blob)
        off += len(blob)
    h = (raw_header or "{" + ",".join(parts) + "}").encode()
    h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def make_safetensors():
    put("safetensors", "two_tensors_meta.safetensors", safetensors(
        [("G.0.weight", [2, 3], [0.5, -1, 2, 3.25, 0, -0.0]), ("G.0.bias", [2], [1, -1])],
        {"format": "pt", "train.step": "12"}))
    put("safetensors", "scalar_empty.safetensors", safetensors(
        [("s", [], [7.0]), ("z", [0, 4], [])]))
    put("safetensors", "escapes.safetensors", safetensors(
        [("caf\u00e9/\u263a\n\"q\"", [1, 1, 1], [1.0])], {"k\u00e9y": "v\\al\u0001"}))
    put("safetensors", "empty.safetensors", safetensors([], raw_header="{}"))
    # the same header with spaces, nesting the JSON parser skips, and a \u escape
    put("safetensors", "spaced.safetensors", safetensors([], raw_header=(
        '{ "__metadata__" : { "a\\u0062" : "c" } , "t" : { "dtype" : "F32" , '
        '"shape" : [ 1 ] , "data_offsets" : [ 0 , 4 ] } }')) + struct.pack("<f", 2.0))


# ---- IDX, plain and gzip ------------------------------------------------------
def idx(code, fmt, shape, vals):
    return (bytes([0, 0, code, len(shape)]) + struct.pack(">%dI" % len(shape), *shape)
            + struct.pack(">%d%s" % (len(vals), fmt), *vals))


def make_idx():
    ub = idx(0x08, "B", [2, 3, 2], [0, 1, 127, 128, 254, 255, 3, 4, 5, 6, 7, 8])
    put("idx", "ubyte_2x3x2.idx", ub)
    put("idx", "sbyte_4.idx", idx(0x09, "b", [4], [-128, -1, 0, 127]))
    put("idx", "int16_2x2.idx", idx(0x0B, "h", [2, 2], [-32768, -1, 0, 32767]))
    put("idx", "int32_3.idx", idx(0x0C, "i", [3], [-2**31, 0, 2**31 - 1]))
    put("idx", "float32_2.idx", idx(0x0D, "f", [2], [1.5, float("inf")]))
    put("idx", "float64_1x2.idx", idx(0x0E, "d", [1, 2], [1e300, -2.5]))
    put("idx", "empty_0x5.idx", idx(0x08, "B", [0, 5], []))
    # labels as Fashion-MNIST ships them, gzip-compressed (mtime 0: reproducible)
    put("idx", "labels.idx.gz", gzip.compress(idx(0x08, "B", [10], list(range(10))), mtime=0))


# ---- images -------------------------------------------------------------------
W, H = 3, 2
RGB = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0, 0, 255, 255, 128, 128, 128])


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w, h, depth, ctype, rows, extra=(), interlace=0):
    """rows: the filtered scanlines (filter byte first), already laid out."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    body = png_chunk(b"IHDR", ihdr)
    for kind, data in extra:
        body += png_chunk(kind, data)
    return (b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


def make_png():
    rows = b"".join(b"\x01" + RGB[y * W * 3:(y + 1) * W * 3] for y in range(H))   # Sub filter
    put("image", "rgb_3x2.png", png(W, H, 8, 2, rows))
    # palette + tRNS, 4-bit, Paeth/Up filters
    plte = bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    put("image", "palette_4bit.png", png(4, 2, 4, 3, b"\x04\x01\x23\x02\x32\x10",
                                         [(b"PLTE", plte), (b"tRNS", b"\x00\x80")]))
    # 16-bit gray + alpha, Average filter
    put("image", "gray_alpha_16.png", png(2, 1, 16, 4, b"\x03" + bytes(range(1, 9))))
    # Adam7 interlaced 1-bit gray, 3x3: passes 1 (1x1), 4 (1x1), 5 (2x1),
    # 6 (1x2) and 7 (3x1) are not empty
    put("image", "interlaced_1bit.png", png(3, 3, 1, 0, b"\x00\x80" + b"\x00\x00" + b"\x00\x40"
                                            + b"\x00\x80\x00\x00" + b"\x00\xc0", interlace=1))


def make_gif():
    # 2x2, 4 colours, LZW min code size 2: the four pixels as literals with
    # 3-bit codes, a clear (4) every two so that the code size never grows,
    # end (5); packed LSB first
    codes, bits, nbits = [4, 0, 1, 4, 2, 3, 5], 0, 0
    out = bytearray()
    for c in codes:
        bits |= c << nbits
        nbits += 3
        while nbits >= 8:
            out.append(bits & 255)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 255)
    pal = bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    gif = (b"GIF89a" + struct.pack("<HHBBB", 2, 2, 0x81, 0, 0) + pal
           + b"\x21\xf9\x04\x01\x0a\x00\x02\x00"   # graphic control: transparent index 2
           + b"\x2c" + struct.pack("<HHHHB", 0, 0, 2, 2, 0) + b"\x02"
           + bytes([len(out)]) + bytes(out) + b"\x00\x3b")
    put("image", "anim_2x2.gif", gif)


def make_pnm_hdr():
    put("image", "rgb_3x2.ppm", b"P6\n# c\n3 2\n255\n" + RGB)
    put("image", "gray_2x2.pgm", b"P5 2 2 255\n\x00\x40\x80\xff")
    rgbe = bytes([128, 64, 32, 129] * 4)
    put("image", "flat_2x2.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n" + rgbe)


def make_stb_written():
    stb = ctypes.CDLL("libstb.so.0")
    sink = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
    got = bytearray()

    def take(ctx, data, size):
        got.extend(ctypes.string_at(data, size))
    cb = sink(take)
    px = ctypes.create_string_buffer(RGB, len(RGB))
    rgba = bytes(b for i in range(W * H) for b in RGB[3 * i:3 * i + 3] + bytes([40 * i]))
    pxa = ctypes.create_string_buffer(rgba, len(rgba))
    jobs = [("rgb_3x2.bmp", stb.stbi_write_bmp_to_func, (cb, None, W, H, 3, px)),
            ("rgba_3x2.tga", stb.stbi_write_tga_to_func, (cb, None, W, H, 4, pxa)),
            ("rgb_3x2.jpg", stb.stbi_write_jpg_to_func, (cb, None, W, H, 3, px, 90))]
    for name, fn, args in jobs:
        got.clear()
        if not fn(*args):
            raise SystemExit("make_corpus: %s failed" % name)
        put("image", name, bytes(got))


if __name__ == "__main__":
    make_safetensors()
    make_idx()
    make_png()
    make_gif()
    make_pnm_hdr()
    make_stb_written()
