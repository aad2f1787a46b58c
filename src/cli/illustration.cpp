#include "illustration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <span>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "png_grid.h"

namespace ddpm::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", value);
  return text;
}

// Mean absolute difference per element, in double.
double l1(std::span<const float> a, std::span<const float> b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(static_cast<double>(a[i]) - b[i]);
  return a.empty() ? 0.0 : sum / static_cast<double>(a.size());
}

std::vector<float> repeat(const std::vector<float>& x, int times) {
  std::vector<float> out;
  out.reserve(x.size() * static_cast<std::size_t>(times));
  for (int i = 0; i < times; ++i) out.insert(out.end(), x.begin(), x.end());
  return out;
}

// The photograph's pictures at display size: every `factor`-th pixel (the
// centre of each factor x factor block), so that noise looks as noisy as it is.
class Thumbnails {
 public:
  Thumbnails(std::int64_t channels, std::int64_t height, std::int64_t width, int tile_size)
      : channels_(channels), height_(height), width_(width) {
    factor_ = std::max<std::int64_t>(1, (std::max(height, width) + tile_size - 1) / tile_size);
    out_height_ = std::max<std::int64_t>(1, height / factor_);
    out_width_ = std::max<std::int64_t>(1, width / factor_);
  }
  int width() const { return static_cast<int>(out_width_); }
  int height() const { return static_cast<int>(out_height_); }

  // `chw` is one image [C, H, W].
  Picture operator()(std::span<const float> chw, std::string caption) const {
    Picture p{std::vector<float>(static_cast<std::size_t>(out_height_ * out_width_ * channels_)),
              std::move(caption)};
    const std::int64_t plane = height_ * width_, half = factor_ / 2;
    for (std::int64_t y = 0; y < out_height_; ++y) {
      for (std::int64_t x = 0; x < out_width_; ++x) {
        const std::int64_t from = std::min(y * factor_ + half, height_ - 1) * width_ +
                                  std::min(x * factor_ + half, width_ - 1);
        for (std::int64_t c = 0; c < channels_; ++c) {
          p.pixels[static_cast<std::size_t>((y * out_width_ + x) * channels_ + c)] =
              chw[static_cast<std::size_t>(c * plane + from)];
        }
      }
    }
    return p;
  }

 private:
  std::int64_t channels_, height_, width_, factor_ = 1, out_height_ = 1, out_width_ = 1;
};

struct Context {
  Sampler& sampler;
  const std::vector<float>& x0;
  std::int64_t dim;
  const IllustrationSettings& settings;
  const Thumbnails& thumbnail;
  std::vector<int> levels;  // t = i T / N, i = 0 .. N-1
};

std::span<const float> row_of(const std::vector<float>& batch, int row, std::int64_t dim) {
  return std::span<const float>(batch).subspan(static_cast<std::size_t>(row * dim),
                                               static_cast<std::size_t>(dim));
}

// x_t of q(x_t | x0) for one x0 and given noise (zeros: the mean) or noise drawn for sample `first`.
std::vector<float> forward(const Context& c, const std::vector<float>& x0, int rows, int step,
                           std::span<const float> eps, std::int64_t first_sample,
                           std::span<float> eps_out = {}) {
  std::vector<float> x_t(x0.size());
  ForwardRequest r;
  r.x0 = x0;
  r.shape = {rows, c.dim};
  r.step = step;
  r.eps = eps;
  r.noise = {c.settings.seed, first_sample};
  r.x_t = x_t;
  r.eps_out = eps_out;
  c.sampler.forward(r);
  return x_t;
}

std::vector<float> forward_one_step(const Context& c, const std::vector<float>& x_prev, int rows,
                                    int step, std::span<const float> eps) {
  std::vector<float> x_t(x_prev.size());
  ForwardOneStepRequest r;
  r.x_prev = x_prev;
  r.shape = {rows, c.dim};
  r.step = step;
  r.eps = eps;
  r.noise = {c.settings.seed, 0};
  r.x_t = x_t;
  c.sampler.forward_one_step(r);
  return x_t;
}

// (a): the mean (the forward process with zero noise) and M samples per level.
Panel panel_a(const Context& c) {
  Panel panel{'a', {}, {}};
  const int m = c.settings.samples;
  const std::vector<float> zeros(c.x0.size(), 0.0f), batch = repeat(c.x0, m);
  for (const int t : c.levels) {
    PanelRow row{"(a) q(x_t | x0), t = " + std::to_string(t) + ": the mean sqrt(ab_t) x0, then " +
                     std::to_string(m) + " samples",
                 {}};
    row.pictures.push_back(c.thumbnail(forward(c, c.x0, 1, t, zeros, 0), "mean"));
    const std::vector<float> samples = forward(c, batch, m, t, {}, 0);
    for (int j = 0; j < m; ++j) {
      row.pictures.push_back(c.thumbnail(row_of(samples, j, c.dim), "sample " + std::to_string(j + 1)));
    }
    panel.rows.push_back(std::move(row));
  }
  return panel;
}

// (b): one sample of x_{t-1} (x0 at t = 0), then the one step from it.
Panel panel_b(const Context& c) {
  Panel panel{'b', {}, {}};
  const int m = c.settings.samples;
  const std::vector<float> zeros(c.x0.size(), 0.0f);
  for (const int t : c.levels) {
    // Sample index M: not one of (a)'s samples, so the two panels share no draw.
    const std::vector<float> x_prev = t == 0 ? c.x0 : forward(c, c.x0, 1, t - 1, {}, m);
    PanelRow row{"(b) q(x_t | x_t-1), t = " + std::to_string(t) +
                     ": x_t-1, the mean sqrt(alpha_t) x_t-1, then " + std::to_string(m) + " samples",
                 {}};
    row.pictures.push_back(c.thumbnail(x_prev, t == 0 ? "x0" : "x_t-1"));
    row.pictures.push_back(c.thumbnail(forward_one_step(c, x_prev, 1, t, zeros), "mean"));
    const std::vector<float> samples = forward_one_step(c, repeat(x_prev, m), m, t, {});
    for (int j = 0; j < m; ++j) {
      row.pictures.push_back(c.thumbnail(row_of(samples, j, c.dim), "sample " + std::to_string(j + 1)));
    }
    panel.rows.push_back(std::move(row));
  }
  return panel;
}

// (c), (d), (e): one x_t with its noise, then the reverse step's view of it.
std::vector<Panel> panels_c_to_e(const Context& c) {
  const int t = c.settings.step;
  const std::string at = "t = " + std::to_string(t);
  std::vector<float> eps(c.x0.size());
  const std::vector<float> x_t = forward(c, c.x0, 1, t, {}, 0, eps);

  Panel panel_c{'c', {{"(c) x0, x_t and eps at " + at, {}}}, {}};
  panel_c.rows[0].pictures = {c.thumbnail(c.x0, "x0"), c.thumbnail(x_t, "x_t"),
                              c.thumbnail(eps, "eps")};

  // The reverse step given the true eps: its x0_hat and, without fresh
  // noise, the mean of x_{t-1} it forms.
  std::vector<float> x0_hat(c.x0.size()), mean_from_eps(c.x0.size());
  const std::vector<float> zeros(c.x0.size(), 0.0f);
  ReverseStepRequest r;
  r.x_t = x_t;
  r.model_output = eps;
  r.shape = {1, c.dim};
  r.step = t;
  r.noise = {c.settings.seed, 0};
  r.x_prev = mean_from_eps;
  r.variance_noise = zeros;
  r.pred_original_sample = x0_hat;
  c.sampler.reverse_step(r);

  const double l1_noisy = l1(x_t, c.x0), l1_recovered = l1(x0_hat, c.x0);
  Panel panel_d{'d', {}, {}};
  panel_d.l1_lines = {"(d) " + at + ": l1(x_t, x0) = " + number(l1_noisy) +
                      ", l1(x0 from x_t and eps, x0) = " + number(l1_recovered)};
  panel_d.rows.push_back({"(d) x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t): l1 to x0 " +
                              number(l1_noisy) + " (x_t), " + number(l1_recovered) + " (recovered)",
                          {c.thumbnail(x_t, "x_t"), c.thumbnail(x0_hat, "x0 recovered"),
                           c.thumbnail(c.x0, "x0")}});

  // The true posterior mean of x_{t-1} given x_t and x0 (Ho et al. eq. 7),
  // in double from alpha_bar: the independent value.
  const std::vector<double>& alpha_bar = c.sampler.schedule().alpha_bar();
  const double ab = alpha_bar[static_cast<std::size_t>(t)];
  const double ab_prev = t > 0 ? alpha_bar[static_cast<std::size_t>(t - 1)] : 1.0;
  const double alpha = ab / ab_prev, beta = 1.0 - alpha;
  const double from_x0 = std::sqrt(ab_prev) * beta / (1.0 - ab);
  const double from_x_t = std::sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab);
  std::vector<float> true_mean(c.x0.size());
  for (std::size_t i = 0; i < true_mean.size(); ++i) {
    true_mean[i] = static_cast<float>(from_x0 * c.x0[i] + from_x_t * x_t[i]);
  }
  const double l1_mean = l1(mean_from_eps, true_mean);
  Panel panel_e{'e', {}, {}};
  panel_e.l1_lines = {"(e) " + at + ": l1(posterior mean from eps, true mean of step t-1) = " +
                      number(l1_mean)};
  panel_e.rows.push_back({"(e) the posterior mean from x_t and eps against the true mean "
                          "mu(x_t, x0): l1 " + number(l1_mean),
                          {c.thumbnail(x_t, "x_t"), c.thumbnail(mean_from_eps, "from eps"),
                           c.thumbnail(true_mean, "true mean")}});
  return {std::move(panel_c), std::move(panel_d), std::move(panel_e)};
}

// (f): the reverse loop with the oracle, in pieces that stop at each level
// (a loop in pieces equals one run bit for bit).
Panel panel_f(const Context& c, Sampler& sampler, const std::function<void(int, int)>& progress) {
  GaussianPrior oracle;
  oracle.means = c.x0;
  oracle.std = 0.0f;
  GaussianPredictor predictor(oracle);
  const int total = sampler.schedule().steps();
  std::vector<float> x(c.x0.size());
  PanelRow row{"(f) the reverse process with the true noise (the oracle predictor)", {}};

  int next = total - 1;  // x holds the state before step `next` runs
  bool drawn = false;    // x_T is drawn by the first piece
  auto run_down_to = [&](int end_step) {
    SampleRequest piece;
    piece.x = x;
    piece.shape = {1, c.dim};
    piece.noise = {c.settings.seed, 0};
    piece.initial_noise_given = drawn;
    piece.start_step = next;
    piece.end_step = end_step;
    const int done_before = total - 1 - next;
    piece.progress = [&, done_before](int done, int) { progress(done_before + done, total); };
    sampler.sample(piece, predictor);
    drawn = true;
    next = end_step - 1;
  };
  for (auto level = c.levels.rbegin(); level != c.levels.rend(); ++level) {
    if (*level == 0) continue;
    if (*level < next) run_down_to(*level + 1);  // leaves x = x_level
    row.pictures.push_back(c.thumbnail(x, "t = " + std::to_string(*level)));
  }
  run_down_to(0);
  const double distance = l1(x, c.x0);
  row.pictures.push_back(c.thumbnail(x, "result"));
  row.pictures.push_back(c.thumbnail(c.x0, "x0"));
  row.title += ": l1(result, x0) = " + number(distance);
  Panel panel{'f', {std::move(row)}, {"(f) l1(oracle reverse run, x0) = " + number(distance)}};
  return panel;
}

}  // namespace

Illustration illustrate(const NpyArray& image, Sampler& sampler, Sampler& oracle_sampler,
                        const IllustrationSettings& settings,
                        const std::function<void(int, int)>& progress) {
  if (image.shape.size() != 4 || image.shape[0] != 1) {
    throw Error("illustrate: the image must be [1, C, H, W]");
  }
  const std::int64_t channels = image.shape[1], height = image.shape[2], width = image.shape[3];
  const int steps = sampler.schedule().steps();
  const Thumbnails thumbnail(channels, height, width, settings.tile_size);
  Context c{sampler, image.data, channels * height * width, settings, thumbnail, {}};
  for (int i = 0; i < settings.rows; ++i) {
    c.levels.push_back(static_cast<int>(std::int64_t{i} * steps / settings.rows));
  }

  Illustration result;
  result.tile_width = thumbnail.width();
  result.tile_height = thumbnail.height();
  result.channels = static_cast<int>(channels);
  const auto started = Clock::now();
  result.panels.push_back(panel_a(c));
  result.panels.push_back(panel_b(c));
  for (Panel& p : panels_c_to_e(c)) result.panels.push_back(std::move(p));
  result.seconds_a_to_e = seconds_since(started);
  const auto started_f = Clock::now();
  result.panels.push_back(panel_f(c, oracle_sampler, progress));
  result.seconds_f = seconds_since(started_f);
  return result;
}

std::string illustration_png(const Illustration& illustration,
                             const std::vector<const Panel*>& panels,
                             const std::vector<std::string>& title) {
  int rows = 0;
  std::size_t columns = 1;
  for (const Panel* panel : panels) {
    rows += static_cast<int>(panel->rows.size());
    for (const PanelRow& row : panel->rows) columns = std::max(columns, row.pictures.size());
  }
  const int text_scale = std::max(illustration.tile_width, illustration.tile_height) >= 96 ? 2 : 1;
  ImageGrid grid(rows, static_cast<int>(columns), illustration.tile_width,
                 illustration.tile_height, 1, text_scale);
  for (const std::string& line : title) grid.add_title_line(line);
  int r = 0;
  for (const Panel* panel : panels) {
    for (const PanelRow& row : panel->rows) {
      grid.set_row_title(r, row.title);
      for (std::size_t j = 0; j < row.pictures.size(); ++j) {
        const Picture& picture = row.pictures[j];
        const int column = static_cast<int>(j);
        if (illustration.channels == 3) {
          grid.place_rgb(r, column, picture.pixels);
        } else {
          grid.place_gray(r, column, picture.pixels, 1.0f, -1.0f);
        }
        grid.set_caption(r, column, picture.caption);
      }
      ++r;
    }
  }
  return grid.encode_png();
}

}  // namespace ddpm::cli
