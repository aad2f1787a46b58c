// Samples a small batch through the installed library and checks the result
// is finite and centred on the prior mean; then samples it again in chunks
// into a file through ddpm::ChunkedOutput, as the README's own-launcher
// example does, and checks the file holds the same bits.
#include <ddpm/ddpm.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

int main() {
  ddpm::Sampler sampler(ddpm::Schedule::linear(), {.backend = ddpm::Backend::cpu});
  ddpm::GaussianPredictor predictor({.mean = 0.5f, .std = 0.3f});
  std::vector<float> x(64 * 512);
  sampler.sample({.x = x, .shape = {64, 512}, .noise = {.seed = 1}}, predictor);
  double sum = 0;
  for (float v : x) sum += v;
  const double mean = sum / x.size();
  std::printf("consumer: mean %.4f\n", mean);
  if (!std::isfinite(mean) || std::abs(mean - 0.5) >= 0.01) return 1;

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ddpm-consumer-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string out_path = (dir / "out.npy").string();
  {
    ddpm::ChunkedOutput out = ddpm::ChunkedOutput::create_or_resume(
        {.outputs = {out_path}, .shape = {64, 512}, .fingerprint = {"seed 1"}}, /*resume=*/true);
    for (const ddpm::RowRange& chunk : ddpm::chunk_rows(out.rows_to_do(), 24)) {
      std::vector<float> rows(chunk.size() * 512);
      sampler.sample({.x = rows, .shape = {chunk.size(), 512},
                      .noise = {.seed = 1, .first_sample = chunk.begin}}, predictor);
      out.write_chunk(chunk, rows);
    }
    out.publish();
  }
  const bool same = ddpm::read_npy(out_path).data == x;
  std::filesystem::remove_all(dir);
  std::printf("consumer: chunked file %s the one-batch bits\n", same ? "holds" : "differs from");
  return same ? 0 : 1;
}
