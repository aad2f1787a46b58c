// Which library runs UNet2DModel's 3x3 convolutions on the CPU: oneDNN
// (Debian's libdnnl-dev 2.6, with plain nchw tensors and with its own blocked
// layouts) against what ddpm does, im2col + OpenBLAS sgemm, one thread each,
// at google/ddpm-cifar10-32's two largest shapes, batch 1 and 16. Not part of
// the build (oneDNN is not a dependency); the figures it gave are in
// docs/model-format.md.
//
//   apt-get install libdnnl-dev libopenblas-dev
//   g++ -std=c++20 -O2 bench/probes/onednn_conv_probe.cpp -I/usr/include/x86_64-linux-gnu/openblas-pthread \
//       -ldnnl -lopenblas -o /tmp/onednn_conv_probe && OMP_NUM_THREADS=1 /tmp/onednn_conv_probe
#include <dnnl.hpp>
#include <functional>
#include <tuple>
#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
using namespace dnnl;
double seconds(const std::function<void()>& f, int reps) {
  f();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) { auto a = std::chrono::steady_clock::now(); f(); t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count()); }
  std::sort(t.begin(), t.end()); return t[t.size() / 2];
}
int main() {
  openblas_set_num_threads(1);
  engine eng(engine::kind::cpu, 0); stream s(eng);
  for (auto [N, C, H] : std::vector<std::tuple<int,int,int>>{{1,128,32},{1,256,16},{16,128,32},{16,256,16}}) {
    const int K = C * 9, P = H * H;
    std::vector<float> x(N * C * P, 0.5f), w(C * K, 0.01f), b(C, 0.1f), y(N * C * P), col(K * P);
    auto im2col_gemm = [&] {
      for (int n = 0; n < N; ++n) {
        const float* xs = x.data() + n * C * P;
        for (int c = 0; c < C; ++c) for (int ky = 0; ky < 3; ++ky) for (int kx = 0; kx < 3; ++kx) {
          float* d = col.data() + ((c * 3 + ky) * 3 + kx) * P;
          for (int oy = 0; oy < H; ++oy) { int iy = oy + ky - 1; float* row = d + oy * H;
            if (iy < 0 || iy >= H) { std::fill(row, row + H, 0.f); continue; }
            int sh = kx - 1, b0 = std::max(0, -sh), e0 = std::min(H, H - sh);
            std::fill(row, row + b0, 0.f); std::copy(xs + c * P + iy * H + b0 + sh, xs + c * P + iy * H + e0 + sh, row + b0); std::fill(row + e0, row + H, 0.f); }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, P, K, 1.f, w.data(), K, col.data(), P, 0.f, y.data() + n * C * P, P);
      }
    };
    memory::dims src{N, C, H, H}, wei{C, C, 3, 3}, bia{C}, dst{N, C, H, H};
    auto run_dnnl = [&](memory::format_tag tag) {
      auto sd = memory::desc(src, memory::data_type::f32, tag), wd = memory::desc(wei, memory::data_type::f32, tag == memory::format_tag::any ? tag : memory::format_tag::oihw);
      auto bd = memory::desc(bia, memory::data_type::f32, memory::format_tag::x), dd = memory::desc(dst, memory::data_type::f32, tag);
      auto cd = convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct, sd, wd, bd, dd, {1,1}, {1,1}, {1,1}); auto pd = convolution_forward::primitive_desc(cd, eng);
      memory sm(pd.src_desc(), eng), wm(pd.weights_desc(), eng), bm(pd.bias_desc(), eng), dm(pd.dst_desc(), eng);
      convolution_forward conv(pd);
      double t = seconds([&] { conv.execute(s, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, dm}}); s.wait(); }, 9);
      std::printf("    oneDNN %-8s impl %-24s %.3f ms\n", tag == memory::format_tag::any ? "blocked" : "nchw", pd.impl_info_str(), t * 1e3);
    };
    std::printf("N=%d C=%d %dx%d:\n    im2col+sgemm           %.3f ms\n", N, C, H, H, seconds(im2col_gemm, 9) * 1e3);
    run_dnnl(memory::format_tag::nchw);
    run_dnnl(memory::format_tag::any);
  }
}
