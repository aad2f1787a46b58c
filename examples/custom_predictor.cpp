// Your own network as ddpm's noise predictor: a small MLP written in plain
// C++ (random weights stand in for trained ones), plugged into the sampler by
// implementing ddpm::NoisePredictor. Built with the project so that it keeps
// compiling; ctest runs it.
//
//   examples/custom_predictor          sample 8 vectors of 16 floats, print their statistics
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <ddpm/ddpm.h>

// eps(x_t, t) = W2 relu(W1 x_t + w_t * t / T + b1) + b2, one row at a time.
class TinyEpsNetwork : public ddpm::NoisePredictor {
 public:
  TinyEpsNetwork(int dim, int hidden, unsigned seed) : dim_(dim), hidden_(hidden) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> n(0.0f, 0.3f);
    for (auto* v : {&w1_, &w2_}) v->resize(static_cast<std::size_t>(dim * hidden));
    for (auto* v : {&b1_, &w_t_}) v->resize(static_cast<std::size_t>(hidden));
    b2_.resize(static_cast<std::size_t>(dim));
    for (auto* v : {&w1_, &w2_, &b1_, &w_t_, &b2_}) {
      for (float& w : *v) w = n(gen);
    }
  }

  // Once per sampling loop, before any predict(): check the shape and size
  // the buffers (on a GPU: upload weights and allocate here, so that predict()
  // only launches and can be captured into a CUDA Graph).
  void prepare(const ddpm::Schedule& schedule, ddpm::Memory, ddpm::Shape shape, void*) override {
    if (shape.dim != dim_) throw ddpm::Error("TinyEpsNetwork has dim " + std::to_string(dim_));
    steps_ = schedule.steps();
    hidden_values_.resize(static_cast<std::size_t>(hidden_));
  }

  // x_t and eps are [batch, dim]; the step is call.step, or call.steps[row]
  // when the sampler gives every row its own.
  void predict(const ddpm::PredictorCall& call) override {
    for (std::int64_t row = 0; row < call.shape.batch; ++row) {
      const int t = call.steps ? call.steps[row] : call.step;
      const float time = static_cast<float>(t) / static_cast<float>(steps_);
      const float* x = call.x_t + row * dim_;
      float* eps = call.eps + row * dim_;
      for (int j = 0; j < hidden_; ++j) {
        float s = b1_[j] + w_t_[j] * time;
        for (int k = 0; k < dim_; ++k) s += w1_[j * dim_ + k] * x[k];
        hidden_values_[j] = std::max(s, 0.0f);
      }
      for (int k = 0; k < dim_; ++k) {
        float s = b2_[k];
        for (int j = 0; j < hidden_; ++j) s += w2_[k * hidden_ + j] * hidden_values_[j];
        eps[k] = s;
      }
    }
  }

  // Host arrays only: the CUDA backend copies to and from the device for it.
  bool supports(ddpm::Memory memory) const override { return memory == ddpm::Memory::host; }

 private:
  int dim_, hidden_, steps_ = 0;
  std::vector<float> w1_, b1_, w_t_, w2_, b2_, hidden_values_;
};

int main() {
  try {
    ddpm::Sampler sampler(ddpm::Schedule::linear(100, 1e-4, 0.2),
                          {.clip_x0 = ddpm::ClipRange{-1.0f, 1.0f}, .backend = ddpm::Backend::cpu});
    TinyEpsNetwork network(16, 32, 1);
    const ddpm::Shape shape{8, 16};
    std::vector<float> x(static_cast<std::size_t>(shape.size()));
    ddpm::SampleRequest request;
    request.x = x;
    request.shape = shape;
    request.noise = {.seed = 1, .first_sample = 0};
    sampler.sample(request, network);
    double sum = 0.0, squares = 0.0;
    for (float v : x) {
      if (!std::isfinite(v)) throw ddpm::Error("sample is not finite");
      sum += v;
      squares += static_cast<double>(v) * v;
    }
    const double mean = sum / static_cast<double>(x.size());
    std::printf("%lld samples of %lld floats: mean %.4f, std %.4f\n",
                static_cast<long long>(shape.batch), static_cast<long long>(shape.dim), mean,
                std::sqrt(squares / static_cast<double>(x.size()) - mean * mean));
  } catch (const ddpm::Error& e) {
    std::fprintf(stderr, "custom_predictor: %s\n", e.what());
    return 1;
  }
  return 0;
}
