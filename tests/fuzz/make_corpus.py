#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora: small valid inputs and near misses.

    tests/fuzz/make_corpus.py    (rewrites corpus/fuzz_npy and corpus/fuzz_gmm_spec)

No NumPy needed: the .npy images are put together by hand, as numpy.lib.format
writes them. File names have no .npy suffix (the repository ignores *.npy).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def npy(descr, shape, data, major=1, fortran=False, pad=True):
    shape_text = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    prefix = 8 + (2 if major == 1 else 4)
    if pad:
        unpadded = prefix + len(header) + 1
        header += " " * ((unpadded + 63) // 64 * 64 - unpadded) + "\n"
    length = struct.pack("<H" if major == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([major, 0]) + length + header.encode() + data


def write(corpus, name, data):
    directory = os.path.join(HERE, "corpus", corpus)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def main():
    f4 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    good = npy("<f4", (2, 3), f4)
    for name, data in {
        "f4_2x3": good,
        "f8_3": npy("<f8", (3,), struct.pack("<3d", 0.1, -2.5, 1e10)),
        "i8_4": npy("<i8", (4,), struct.pack("<4q", 0, 49, 10, 3)),
        "u1_4": npy("|u1", (4,), bytes([0, 49, 10, 3])),
        "i2_2x2": npy("<i2", (2, 2), struct.pack("<4h", -3, 7, 100, 0)),
        "u8_big": npy("<u8", (1,), struct.pack("<Q", 2**63)),
        "scalar": npy("<f4", (), struct.pack("<f", 7.5)),
        "empty": npy("<f4", (0, 4), b""),
        "v2": npy("<f4", (2,), struct.pack("<2f", 1, 2), major=2),
        "v3": npy("<f4", (2,), struct.pack("<2f", 1, 2), major=3),
        "unpadded": npy("<f4", (2,), struct.pack("<2f", 1, 2), pad=False),
        "f8_beyond_f4": npy("<f8", (1,), struct.pack("<d", 1e300)),
        "f4_fraction_steps": npy("<f4", (3,), struct.pack("<3f", 1, 2.5, 3)),
        "truncated": good[:-5],
        "trailing": good + b"xyz",
        "big_endian": npy(">f4", (2, 3), f4),
        "fortran": npy("<f4", (2, 3), f4, fortran=True),
        "huge_shape": npy("<f4", (4611686018427387, 4611686018427387), b""),
        "zero_and_huge": npy("<f4", (0, 2**40, 2**40), b""),
        "header_too_long": b"\x93NUMPY\x02\x00" + struct.pack("<I", 2 << 20) + b"{}",
        "python2_long": good.replace(b"(2, 3), ", b"(2L, 3L),"),
    }.items():
        write("fuzz_npy", name, data)

    for name, text in {
        "two_components": '{"weights": [0.25, 0.75], "means": [[-3, 0], [3, 1]], "stds": [0.3, 0.3]}',
        "one_component": '{"weights": [1], "means": [[0.5]], "stds": [0]}',
        "zero_weight": '{"weights": [0, 1], "means": [[1, 2], [3, 4]], "stds": [1, 1]}',
        "weights_sum": '{"weights": [0.5, 0.6], "means": [[0], [1]], "stds": [1, 1]}',
        "ragged": '{"weights": [0.5, 0.5], "means": [[0, 0], [1]], "stds": [1, 1]}',
        "negative_std": '{"weights": [1], "means": [[0]], "stds": [-1]}',
        "huge": '{"weights": [1], "means": [[1e308]], "stds": [1e308]}',
        "strings": '{"weights": ["1"], "means": [["0"]], "stds": ["1"]}',
        "not_object": "[1, 2, 3]",
        "truncated": '{"weights": [0.5, 0.5], "means": [[0, 0], ',
        "nested": "[" * 64 + "]" * 64,
        "empty": "",
    }.items():
        write("fuzz_gmm_spec", name, text)


if __name__ == "__main__":
    main()
