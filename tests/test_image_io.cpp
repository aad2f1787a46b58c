// The image reader and writer (ddpm/image.h) against Pillow's and pypng's
// decodes of the committed test images (scripts/make-image-fixtures), their
// round trip, and hostile files.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ddpm/error.h"
#include "ddpm/image.h"
#include "ddpm/npy.h"
#include "image_bytes.h"
#include "scratch_dir.h"
#include "test_support.h"

namespace ddpm {
namespace {

std::string image_file(const std::string& name) {
  return test::source_file("tests/data/images/" + name);
}

struct DecodeCase {
  std::string file;
  int bits;
  bool alpha;
};
std::ostream& operator<<(std::ostream& os, const DecodeCase& c) {
  return os << c.file << " (" << c.bits << "-bit" << (c.alpha ? ", alpha" : "") << ")";
}

// The first element where `actual` differs from `expected` by more than `tolerance`.
::testing::AssertionResult within(const std::vector<float>& actual,
                                  const std::vector<float>& expected, float tolerance) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << "sizes " << actual.size() << " and " << expected.size();
  }
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (!(std::abs(actual[i] - expected[i]) <= tolerance)) {
      return ::testing::AssertionFailure() << "index " << i << ": " << actual[i] << " vs "
                                           << expected[i] << " (tolerance " << tolerance << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

class PngDecode : public ::testing::TestWithParam<DecodeCase> {};

// PNG is lossless: every value equals NumPy's 2 * (p / max) - 1 of Pillow's
// (8-bit) or pypng's (16-bit) pixels, bit for bit.
TEST_P(PngDecode, EqualsPillowOrPypngExactly) {
  const DecodeCase& c = GetParam();
  const ImageArray image = read_image(image_file(c.file));
  const NpyArray expected = read_npy(image_file(c.file + ".npy"));
  EXPECT_EQ(image.shape, expected.shape);
  EXPECT_EQ(image.bits, c.bits);
  EXPECT_EQ(image.warning.empty(), !c.alpha) << image.warning;
  EXPECT_TRUE(test::bit_identical(image.data, expected.data));
}

INSTANTIATE_TEST_SUITE_P(
    Files, PngDecode,
    ::testing::Values(DecodeCase{"rgb8.png", 8, false}, DecodeCase{"rgba8.png", 8, true},
                      DecodeCase{"grey8.png", 8, false}, DecodeCase{"grey_alpha8.png", 8, true},
                      DecodeCase{"palette8.png", 8, false},
                      DecodeCase{"rgb8_interlaced.png", 8, false},
                      DecodeCase{"rgb16.png", 16, false}, DecodeCase{"grey16.png", 16, false},
                      DecodeCase{"rgba16.png", 16, true}));

// JPEG decoders may differ in their IDCT and chroma upsampling: stb_image's
// pixels are within 3 of Pillow's (libjpeg's), 6/255 in [-1, 1].
class JpegDecode : public ::testing::TestWithParam<std::string> {};

constexpr float kJpegTolerance = 6.0f / 255.0f;

TEST_P(JpegDecode, WithinThreeLevelsOfPillow) {
  const ImageArray image = read_image(image_file(GetParam()));
  const NpyArray expected = read_npy(image_file(GetParam() + ".npy"));
  EXPECT_EQ(image.shape, expected.shape);
  EXPECT_EQ(image.bits, 8);
  EXPECT_TRUE(image.warning.empty());
  EXPECT_TRUE(within(image.data, expected.data, kJpegTolerance));
}

INSTANTIATE_TEST_SUITE_P(Files, JpegDecode,
                         ::testing::Values("small.jpg", "small_progressive.jpg", "grey.jpg"));

// The photograph: [1, 3, 512, 384], and a window over its sharpest edges
// (rows 300-363, columns 252-347, as make_image_fixtures.py cut it).
TEST(JpegDecode, PhotographWindowWithinThreeLevelsOfPillow) {
  const ImageArray image = read_image(image_file("photo.jpg"));
  ASSERT_EQ(image.shape, (std::vector<std::int64_t>{1, 3, 512, 384}));
  const NpyArray expected = read_npy(image_file("photo.jpg.window.npy"));
  ASSERT_EQ(expected.shape, (std::vector<std::int64_t>{1, 3, 64, 96}));
  std::vector<float> window;
  for (int c = 0; c < 3; ++c) {
    for (int y = 300; y < 364; ++y) {
      for (int x = 252; x < 348; ++x) window.push_back(image.data[(c * 512 + y) * 384 + x]);
    }
  }
  EXPECT_TRUE(within(window, expected.data, kJpegTolerance));
}

// A picture ddpm wrote reads back to exactly the values of its pixels, and
// those pixels are what to_pixels made: p = round((x + 1) / 2 * 255).
TEST(ImageRoundTrip, WrittenPngReadsBackExactly) {
  test::ScratchDir dir;
  for (const std::int64_t channels : {1, 3}) {
    const std::vector<std::int64_t> shape{1, channels, 17, 23};
    // Values beyond [-1, 1] too: they are clipped.
    const std::vector<float> x = test::random_values(static_cast<std::size_t>(channels * 17 * 23),
                                                     static_cast<std::uint32_t>(channels), -1.2f, 1.2f);
    const std::string path = (dir.path() / ("round" + std::to_string(channels) + ".png")).string();
    write_png(path, x, shape);
    const ImageArray back = read_image(path);
    ASSERT_EQ(back.shape, shape);
    EXPECT_EQ(back.bits, 8);
    // Pixels of the read image (CHW) are the written ones, as to_pixels (HWC) gives them.
    const std::vector<std::uint8_t> pixels = to_pixels(x, shape);
    const std::int64_t plane = 17 * 23;
    for (std::int64_t c = 0; c < channels; ++c) {
      for (std::int64_t p = 0; p < plane; ++p) {
        const std::uint8_t pixel = pixels[static_cast<std::size_t>(p * channels + c)];
        const float expected = 2.0f * (static_cast<float>(pixel) / 255.0f) - 1.0f;
        ASSERT_EQ(back.data[static_cast<std::size_t>(c * plane + p)], expected) << c << ", " << p;
      }
    }
    // And a second trip changes nothing at all.
    write_png(path, back.data, back.shape);
    EXPECT_TRUE(test::bit_identical(read_image(path).data, back.data));
  }
}

TEST(ImageRoundTrip, PixelsRoundAndClip) {
  EXPECT_EQ(to_pixel(-1.0f), 0);
  EXPECT_EQ(to_pixel(1.0f), 255);
  EXPECT_EQ(to_pixel(-7.0f), 0);
  EXPECT_EQ(to_pixel(3.0f), 255);
  EXPECT_EQ(to_pixel(0.0f), 128);  // 127.5 rounds up
  EXPECT_EQ(to_pixel(2.0f * (200.0f / 255.0f) - 1.0f), 200);
  for (int p = 0; p < 256; ++p) {
    EXPECT_EQ(to_pixel(2.0f * (static_cast<float>(p) / 255.0f) - 1.0f), p);
  }
}

// A batch is drawn as a near-square grid: 5 images of 4 x 6 in 3 columns, 2 rows.
TEST(ImageRoundTrip, BatchIsAGrid) {
  const std::vector<float> x = test::random_values(5 * 3 * 4 * 6, 9, -1.0f, 1.0f);
  test::ScratchDir dir;
  const std::string path = (dir.path() / "grid.png").string();
  write_png(path, x, {5, 3, 4, 6});
  const ImageArray grid = read_image(path);
  EXPECT_EQ(grid.shape, (std::vector<std::int64_t>{1, 3, 2 * 4 + 2, 3 * 6 + 2 * 2}));
  // Image 4 (row 1, column 1) starts at y = 6, x = 8; its pixel (2, 3) in channel 1:
  const float written = x[((4 * 3 + 1) * 4 + 2) * 6 + 3];
  const float read = grid.data[(1 * 10 + (6 + 2)) * 22 + (8 + 3)];
  EXPECT_EQ(read, 2.0f * (static_cast<float>(to_pixel(written)) / 255.0f) - 1.0f);
}

TEST(ImageOutput, RefusesShapesThatAreNotPictures) {
  const std::vector<float> x(24, 0.5f);
  EXPECT_NE(test::message_of([&] { to_pixels(x, {24}); }).find("[C, H, W] or [N, C, H, W]"),
            std::string::npos);
  EXPECT_NE(test::message_of([&] { to_pixels(x, {1, 2, 3, 4}); }).find("1 (grey) or 3 (RGB)"),
            std::string::npos);
  EXPECT_NE(test::message_of([&] { to_pixels(x, {1, 3, 3, 3}); }).find("needs 27 values"),
            std::string::npos);
  std::vector<float> with_nan = x;
  with_nan[5] = std::nanf("");
  EXPECT_NE(test::message_of([&] { to_pixels(with_nan, {2, 3, 2, 2}); }).find("non-finite"),
            std::string::npos);
}

// ---------------------------------------------------------------------------
// Hostile files: one ddpm::Error naming the file and the problem, no crash.

struct BadImage {
  std::string label;
  std::string bytes;
  std::string expected;
};
std::ostream& operator<<(std::ostream& os, const BadImage& c) { return os << c.label; }

std::vector<BadImage> bad_images() {
  const std::string png = test::file_bytes(image_file("rgb8.png"));
  const std::string png16 = test::file_bytes(image_file("rgb16.png"));
  const std::string jpeg = test::file_bytes(image_file("small.jpg"));
  // The first IDAT's data starts at 41 (8 signature + 25 IHDR + 8): its zlib header.
  std::string corrupt_png = png;
  corrupt_png[41] = '\0';
  corrupt_png[42] = '\0';
  // stb_image checks no CRC: a wrong one in the header, or a bit flipped in
  // the compressed pixels (past IDAT's zlib header), is found by the walk.
  std::string bad_header_crc = png;
  bad_header_crc[30] = static_cast<char>(bad_header_crc[30] ^ 0x01);  // IHDR's CRC: bytes 29..32
  std::string flipped_pixel_bit = png;
  flipped_pixel_bit[45] = static_cast<char>(flipped_pixel_bit[45] ^ 0x10);
  return {
      {"empty", "", "the file is empty"},
      {"png_header_crc_wrong", bad_header_crc, "corrupt PNG (the CRC of its IHDR chunk at byte 8"},
      {"png_bit_flipped_in_pixels", flipped_pixel_bit, "corrupt PNG (the CRC of its IDAT chunk"},
      {"wrong_magic", "GIF89a" + png.substr(6), "not a PNG or JPEG file"},
      {"png_signature_only", png.substr(0, 8), "corrupt or unsupported PNG header"},
      {"png_cut_in_header", png.substr(0, 20), "corrupt or unsupported PNG header"},
      {"png_cut_in_data", png.substr(0, png.size() / 2), "truncated PNG"},
      {"png_without_end", png.substr(0, png.size() - 12), "truncated PNG"},
      {"png_cut_in_end_crc", png.substr(0, png.size() - 1), "truncated PNG"},
      {"png16_cut_in_data", png16.substr(0, png16.size() / 2), "truncated PNG"},
      {"png_bad_zlib_header", corrupt_png, "corrupt PNG"},
      {"jpeg_cut_in_header", jpeg.substr(0, 30), "corrupt or unsupported JPEG header"},
      {"jpeg_cut_in_data", jpeg.substr(0, jpeg.size() * 2 / 3), "truncated JPEG"},
      {"jpeg_cut_at_end", jpeg.substr(0, jpeg.size() - 2), "truncated JPEG"},
      {"zero_width", test::png_declaring(0, 10), "0-pixel"},
      {"zero_height", test::png_declaring(10, 0), "0-pixel"},
      {"huge_png", test::png_declaring(100000, 100000), "more than this machine's memory"},
      {"huge_jpeg", test::jpeg_declaring(65500, 65500), "more than this machine's memory"},
      // Found by fuzz_image: Debian's stb_image 2.27 writes past its Huffman tables.
      {"huffman_table_over_256_codes", test::jpeg_with_huffman_table(300),
       "corrupt JPEG (a Huffman table of 300 codes (at most 256))"},
      {"huffman_table_cut_short", test::jpeg_with_huffman_table(300).substr(0, 60),
       "a Huffman table of 300 codes"},
      {"huffman_table_past_segment", test::jpeg_with_huffman_table(20).replace(5, 1, 1, '\x10'),
       "a Huffman table runs past its segment"},
  };
}

class BadImageFile : public ::testing::TestWithParam<BadImage> {};

TEST_P(BadImageFile, RefusedWithOneLine) {
  const BadImage& c = GetParam();
  const std::string message = test::message_of([&] { decode_image(c.bytes, "bad.png"); });
  EXPECT_EQ(message.rfind("bad.png: ", 0), 0u) << message;
  EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Files, BadImageFile, ::testing::ValuesIn(bad_images()),
                         [](const ::testing::TestParamInfo<BadImage>& info) { return info.param.label; });

// Every prefix of a PNG and a JPEG is refused or, whole, read: never a crash
// or a silently partial picture.
TEST(BadImageFile, EveryTruncationIsRefused) {
  for (const std::string name : {"rgb8.png", "small.jpg", "grey16.png"}) {
    const std::string bytes = test::file_bytes(image_file(name));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_NE(test::message_of([&] { decode_image(bytes.substr(0, n), name); }), "(no error)")
          << name << " cut to " << n << " of " << bytes.size() << " bytes";
    }
  }
}

// What follows a file's end (a camera's trailer, padding) is not read: the
// image is the same as without it.
TEST(ImageDecode, DataAfterTheEndIsIgnored) {
  for (const std::string name : {"rgb8.png", "small.jpg", "small_progressive.jpg"}) {
    const std::string bytes = test::file_bytes(image_file(name));
    const std::string trailer(10000, '\x5A');
    EXPECT_TRUE(test::bit_identical(decode_image(bytes + trailer, name).data,
                                    decode_image(bytes, name).data))
        << name;
  }
}

TEST(BadImageFile, DirectoryAndMissingPathNamedAsSuch) {
  test::ScratchDir dir;
  EXPECT_NE(test::message_of([&] { read_image(dir.path().string()); }).find("Is a directory"),
            std::string::npos);
  EXPECT_NE(test::message_of([&] { read_image((dir.path() / "none.png").string()); })
                .find("No such file"),
            std::string::npos);
}

// A FIFO is read as the stream it is: a whole PNG through it reads as the
// file does; a truncated one is refused.
TEST(ImageFromFifo, ReadsAStreamAndRefusesATruncatedOne) {
  test::ScratchDir dir;
  const std::string fifo = (dir.path() / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string png = test::file_bytes(image_file("rgb8.png"));
  for (const bool whole : {true, false}) {
    std::thread writer([&] {
      std::ofstream(fifo, std::ios::binary) << (whole ? png : png.substr(0, png.size() / 2));
    });
    const std::string message = test::message_of([&] {
      const ImageArray image = read_image(fifo);
      EXPECT_TRUE(test::bit_identical(image.data, read_npy(image_file("rgb8.png.npy")).data));
    });
    writer.join();
    if (whole) {
      EXPECT_EQ(message, "(no error)");
    } else {
      EXPECT_NE(message.find("truncated PNG"), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace ddpm
