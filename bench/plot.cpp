#include "plot.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <vector>

#include "format.h"
#include "image/canvas.h"

namespace ddpm::bench {
namespace {

using image::Canvas;
using image::Color;

constexpr int kWidth = 1000;
constexpr int kHeight = 620;
constexpr int kLeft = 80, kRight = 330, kTop = 84, kBottom = 70;  // plot area margins
constexpr Color kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGrid{225, 225, 225}, kCopy{90, 90, 90};
constexpr Color kPalette[] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},
                              {214, 39, 40},  {148, 103, 189}, {140, 86, 75}};

struct Series {
  std::string name;
  Color color;
  bool dashed = false;
  std::vector<std::pair<double, double>> points;  // (log2 elements, GB/s)
};

// 2^k as people write sizes: 512, 8K, 1M, 256M, 1G.
std::string power_label(int k) {
  if (k < 10) return std::to_string(1 << k);
  if (k < 20) return std::to_string(1 << (k - 10)) + "K";
  if (k < 30) return std::to_string(1 << (k - 20)) + "M";
  return std::to_string(1 << (k - 30)) + "G";
}

// A tick step of 1, 2 or 5 x 10^k giving about `target` intervals up to `top`.
double nice_step(double top, int target) {
  const double raw = top / target;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10.0 * power;
}

std::vector<Series> gpu_series(const Report& report) {
  std::vector<Series> series;
  std::map<std::int64_t, double> copy_at;  // copy GB/s of the 12 B/element rows, by elements
  for (const Row& row : report.rows) {
    if (row.section != "gpu" || !row.skipped.empty() || row.seconds.median <= 0) continue;
    auto it = std::find_if(series.begin(), series.end(),
                           [&](const Series& s) { return s.name.rfind(row.kernel + " ", 0) == 0; });
    if (it == series.end()) {
      const Color color = kPalette[series.size() % std::size(kPalette)];
      series.push_back(Series{
          row.kernel + " " + format_fixed(row.bytes_per_element, 0) + " B", color, false, {}});
      it = series.end() - 1;
    }
    it->points.emplace_back(std::log2(static_cast<double>(row.elements)), row.gigabytes_per_second);
    if (row.bytes_per_element == 12.0 && row.copy_gigabytes_per_second > 0 &&
        !copy_at.count(row.elements)) {
      copy_at[row.elements] = row.copy_gigabytes_per_second;
    }
  }
  if (!copy_at.empty()) {
    Series copy{"D2D copy", kCopy, true, {}};
    for (const auto& [n, gbps] : copy_at)
      copy.points.emplace_back(std::log2(static_cast<double>(n)), gbps);
    series.push_back(copy);
  }
  return series;
}

std::string title_of(const Report& report) {
  std::string title = "ddpm-bench  " + report.run.commit + "  " + report.run.date.substr(0, 10);
  if (report.gpu.usable) title += "  " + report.gpu.name;
  return title;
}

// Words of `text` in lines of at most `width` characters.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::vector<std::string> message_lines(const Report& report) {
  std::vector<std::string> lines;
  lines.push_back("No GPU rows in this run.");
  if (!report.gpu_skipped.empty()) lines.push_back("Reason: " + report.gpu_skipped);
  for (const Row& row : report.rows) {
    if (row.section == "cpu" && row.skipped.empty()) {
      lines.push_back("CPU backend: " + format_count(row.elements_per_second) +
                      " element-steps/s with " + std::to_string(row.threads) + " thread(s), " +
                      row.shape + ", T=" + std::to_string(row.steps));
    }
  }
  std::vector<std::string> wrapped;
  for (const std::string& line : lines) {
    for (const std::string& part : wrap(line, 78)) wrapped.push_back(part);
  }
  return wrapped;
}

void draw_plot(const Report& report, const std::vector<Series>& series, Canvas& canvas) {
  const int x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = kTop;
  double lo = 1e9, hi = -1e9, top = 0;
  for (const Series& s : series) {
    for (const auto& [x, y] : s.points) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      top = std::max(top, y);
    }
  }
  lo = std::floor(lo) - 0.5;
  hi = std::ceil(hi) + 0.5;
  const double step = nice_step(top > 0 ? top * 1.05 : 1.0, 6);
  const double y_top = std::ceil((top > 0 ? top * 1.05 : 1.0) / step) * step;
  auto px = [&](double x) { return x0 + (x - lo) / (hi - lo) * (x1 - x0); };
  auto py = [&](double y) { return y0 - y / y_top * (y0 - y1); };

  canvas.text(8, 10, title_of(report), kBlack, 2);
  canvas.text(8, 34, "achieved GB/s = bytes moved / median time, per step", kBlack, 2);

  // Grid, ticks and labels.
  for (double v = 0; v <= y_top + step / 2; v += step) {
    const double y = py(v);
    canvas.line(x0, y, x1, y, kGrid);
    const std::string label = format_fixed(v, step < 1 ? 1 : 0);
    canvas.text(x0 - 8 - Canvas::text_width(label, 2), static_cast<int>(y) - 7, label, kBlack, 2);
  }
  const int first = static_cast<int>(std::ceil(lo)), last = static_cast<int>(std::floor(hi));
  const int every = last - first > 12 ? 2 : 1;
  for (int k = first; k <= last; ++k) {
    const double x = px(k);
    canvas.line(x, y0, x, y1, kGrid);
    canvas.line(x, y0, x, y0 + 6, kBlack);
    if ((k - first) % every == 0) {
      const std::string label = power_label(k);
      canvas.text(static_cast<int>(x) - Canvas::text_width(label, 2) / 2, y0 + 12, label, kBlack,
                  2);
    }
  }
  canvas.line(x0, y0, x1, y0, kBlack, 2);
  canvas.line(x0, y0, x0, y1, kBlack, 2);
  const std::string x_title = "elements per call (log2 scale)";
  canvas.text((x0 + x1 - Canvas::text_width(x_title, 2)) / 2, y0 + 42, x_title, kBlack, 2);
  canvas.text(x0 - 8 - Canvas::text_width("GB/s", 2), y1 - 24, "GB/s", kBlack, 2);

  // Lines and markers.
  for (const Series& s : series) {
    for (std::size_t i = 1; i < s.points.size(); ++i) {
      canvas.line(px(s.points[i - 1].first), py(s.points[i - 1].second), px(s.points[i].first),
                  py(s.points[i].second), s.color, s.dashed ? 3 : 2, s.dashed ? 8 : 0);
    }
    if (!s.dashed) {
      for (const auto& [x, y] : s.points) {
        canvas.fill_rect(static_cast<int>(px(x)) - 3, static_cast<int>(py(y)) - 3, 7, 7, s.color);
      }
    }
  }

  // Legend, right of the plot.
  int ly = y1 + 4;
  const int lx = x1 + 24;
  for (const Series& s : series) {
    canvas.line(lx, ly + 7, lx + 28, ly + 7, s.color, s.dashed ? 3 : 2, s.dashed ? 6 : 0);
    if (!s.dashed) canvas.fill_rect(lx + 11, ly + 4, 7, 7, s.color);
    canvas.text(lx + 36, ly, s.name, kBlack, 2);
    ly += 26;
  }
  ly += 10;
  const std::size_t columns =
      static_cast<std::size_t>((kWidth - lx - 8) / Canvas::text_width("x", 2));
  for (const std::string& line :
       wrap("B = bytes per element and step: each input read once, each output written once. "
            "The copy moves 12 B per element (6 read, 6 written).",
            columns)) {
    canvas.text(lx, ly, line, kBlack, 2);
    ly += 20;
  }
}

}  // namespace

std::string plot_path_for(const std::string& json_path) {
  std::filesystem::path path(json_path);
  path.replace_extension(".png");
  return path.string();
}

void write_plot(const Report& report, const std::string& path) {
  const std::vector<Series> series = gpu_series(report);
  if (series.empty()) {
    const std::vector<std::string> lines = message_lines(report);
    Canvas canvas(kWidth, 80 + 24 * static_cast<int>(lines.size()), kWhite);
    canvas.text(20, 20, title_of(report), kBlack, 2);
    int y = 60;
    for (const std::string& line : lines) {
      canvas.text(20, y, line, kBlack, 2);
      y += 24;
    }
    canvas.write_png(path);
    return;
  }
  Canvas canvas(kWidth, kHeight, kWhite);
  draw_plot(report, series, canvas);
  canvas.write_png(path);
}

}  // namespace ddpm::bench
