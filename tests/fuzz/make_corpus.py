#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora: small valid inputs and near misses.

    tests/fuzz/make_corpus.py    (rewrites every corpus/fuzz_*/ it knows)

No NumPy needed: the .npy images are put together by hand, as numpy.lib.format
writes them. File names have no .npy suffix (the repository ignores *.npy).
"""
import json
import os
import struct
import zlib

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


def safetensors(header, data):
    """A safetensors image: 8-byte little-endian header length, JSON, data."""
    text = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(text)) + text + data


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
        # Text after a NUL byte, which nlohmann-json alone never reads.
        "nul_then_garbage": '{"weights": [1], "means": [[0]], "stds": [1]}\0garbage',
        "trailing_text": '{"weights": [1], "means": [[0]], "stds": [1]} {}',
    }.items():
        write("fuzz_gmm_spec", name, text)

    for name, text in {
        "ddpm": '{"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "linear",'
                ' "variance_type": "fixed_small", "clip_sample": true, "prediction_type": "epsilon"}',
        "ddim_sd": '{"_class_name": "DDIMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,'
                   ' "beta_end": 0.012, "set_alpha_to_one": false, "steps_offset": 1, "clip_sample": false}',
        "ddim_zero_snr": '{"_class_name": "DDIMScheduler", "rescale_betas_zero_snr": true,'
                         ' "timestep_spacing": "trailing", "prediction_type": "v_prediction"}',
        "euler_karras": '{"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true,'
                        ' "timestep_spacing": "leading", "steps_offset": 1}',
        "dpmpp": '{"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver++",'
                 ' "solver_order": 2, "thresholding": true, "dynamic_thresholding_ratio": 0.995}',
        "trained_betas": '{"_class_name": "DDPMScheduler", "num_train_timesteps": 3,'
                         ' "trained_betas": [0.1, 0.2, 0.3]}',
        "bad_betas": '{"num_train_timesteps": 2, "trained_betas": [0.5, 1.5]}',
        "squaredcos": '{"beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 50}',
        "unknown_class": '{"_class_name": "LMSDiscreteScheduler"}',
        "wrong_types": '{"num_train_timesteps": "1000", "clip_sample_range": -1}',
        "not_object": "[]",
        "empty": "",
        "nul_then_garbage": '{"_class_name": "DDPMScheduler"}\0 garbage',
        # Python's json writes non-finite floats so; diffusers saves them.
        "python_infinity": '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,'
                           ' "sample_max_value": Infinity, "beta_end": NaN, "x": "NaN -Infinity"}',
        "infinity_glued": '{"beta_start": 1Infinity, "beta_end": -NaN}',
        # The deeper-history classes and DPM-Solver++'s own keys.
        "heun_karras": '{"_class_name": "HeunDiscreteScheduler", "use_karras_sigmas": true, "clip_sample": true,'
                       ' "clip_sample_range": 2.0, "timestep_spacing": "trailing"}',
        "unipc": '{"_class_name": "UniPCMultistepScheduler", "solver_order": 3, "solver_type": "bh1",'
                 ' "disable_corrector": [0, 2], "lower_order_final": false, "final_sigmas_type": "sigma_min",'
                 ' "thresholding": true, "predict_x0": true, "solver_p": null}',
        "dpmpp_3m_sde": '{"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++",'
                        ' "solver_order": 3, "euler_at_final": true, "use_lu_lambdas": true,'
                        ' "lambda_min_clipped": -5.1, "final_sigmas_type": "sigma_min"}',
    }.items():
        write("fuzz_scheduler_config", name, text)

    two = struct.pack("<2f", 1.5, -2.0)
    for name, data in {
        "one_tensor": safetensors('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', two),
        "with_metadata": safetensors('{"__metadata__": {"format": "pt"}, "w": {"dtype": "F32",'
                                     ' "shape": [1, 2], "data_offsets": [0, 8]}}', two),
        "two_tensors": safetensors('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
                                   ' "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', two),
        "overlap": safetensors('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},'
                               ' "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', two),
        "f16": safetensors('{"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]}}', two),
        "huge_shape": safetensors('{"w": {"dtype": "F32", "shape": [4294967296, 4294967296],'
                                  ' "data_offsets": [0, 8]}}', two),
        "header_past_end": struct.pack("<Q", 1 << 40) + b"{}",
        "truncated": safetensors('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', two)[:-3],
        "empty": b"",
        "nul_then_garbage": safetensors('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
                                        '\0GARBAGE{{{', two),
        "nul_padding": safetensors('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
                                   + "\0" * 6, two),
        "space_padding": safetensors('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
                                     + " " * 6, two),
    }.items():
        write("fuzz_safetensors", name, data)

    # Model cards: the digits fixture's, and near misses.
    with open(os.path.join(HERE, "..", "..", "models", "digits.safetensors"), "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        card_text = json.loads(f.read(length))["__metadata__"]["ddpm_model_card"]
    card = json.loads(card_text)
    huge_scale = json.loads(card_text)
    huge_scale.setdefault("normalization", {})["pixel_scale"] = 1e308
    for name, text in {
        "digits": card_text,
        "nul_then_garbage": card_text + "\0garbage",
        "huge_pixel_scale": json.dumps(huge_scale),
        "no_scheduler": json.dumps({k: v for k, v in card.items() if k != "scheduler"}),
        "not_object": "[]",
        "empty": "",
    }.items():
        write("fuzz_model_card", name, text)

    # Manifests of a chunked run (src/io/chunk_manifest.h), and hand edits.
    def manifest(done, rows_done=None, shape=(20, 6), **extra):
        m = {"ddpm_manifest": 2, "options": ["ddpm 0.1.0 sample", "--seed 7", "shape 20x6"],
             "shape": list(shape), "outputs": ["out.npy"],
             "rows_done": sum(e - b for b, e in done) if rows_done is None else rows_done,
             "done": [{"rows": [b, e], "xxh3": ["6cbfd2622fcd3067"]} for b, e in done]}
        m.update(extra)
        return json.dumps(m, indent=1)
    for name, text in {
        "two_chunks": manifest([(0, 4), (4, 8)]),
        "nothing_done": manifest([]),
        "all_done": manifest([(0, 20)]),
        "overlapping": manifest([(0, 4), (2, 6)]),
        "out_of_order": manifest([(4, 8), (0, 4)]),
        "fractional_row": manifest([(0, 4)]).replace("4\n", "4.5\n", 1),
        "rows_done_lies": manifest([(0, 4)], rows_done=20),
        "past_the_end": manifest([(16, 24)]),
        "old_format": manifest([(0, 4)], ddpm_manifest=1),
        "nul_then_garbage": manifest([(0, 4)]) + "\0garbage",
        "empty": "",
    }.items():
        write("fuzz_manifest", name, text)

    # Images: the small committed test images (tests/data/images) and near misses.
    images = os.path.join(HERE, "..", "data", "images")
    def image(name):
        with open(os.path.join(images, name), "rb") as f:
            return f.read()
    rgb8 = image("rgb8.png")
    jpeg = image("small.jpg")
    for name, data in {
        "rgb8_png": rgb8,
        "rgba8_png": image("rgba8.png"),
        "grey16_png": image("grey16.png"),
        "palette_png": image("palette8.png"),
        "interlaced_png": image("rgb8_interlaced.png"),
        "small_jpeg": jpeg,
        "progressive_jpeg": image("small_progressive.jpg"),
        "grey_jpeg": image("grey.jpg"),
        "truncated_png": rgb8[: len(rgb8) // 2],
        "truncated_jpeg": jpeg[: len(jpeg) // 2],
        "huge_png": png_declaring(100000, 100000),
        "zero_png": png_declaring(0, 16),
        "huffman_overflow": jpeg_with_huffman_table(300),
        "empty": b"",
    }.items():
        write("fuzz_image", name, data)


def jpeg_with_huffman_table(codes):
    """SOI, a DHT segment whose one table declares `codes` codes, EOI (stb_image 2.27
    wrote past its tables for more than 256; fuzz_image found it)."""
    counts = [min(255, max(0, codes - 255 * i)) for i in range(16)]
    table = bytes([0] + counts) + b"\x01" * codes
    return b"\xff\xd8\xff\xc4" + struct.pack(">H", 2 + len(table)) + table + b"\xff\xd9"


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width, height):
    """A PNG whose header declares width x height (8-bit RGB) with no pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"")
            + png_chunk(b"IEND", b""))


if __name__ == "__main__":
    main()
