#pragma once
// The committed digit classifier (models/digits_classifier.safetensors,
// trained on real digits only by scripts/train_digits.py), run with plain
// loops: what the end-to-end tests label generated digits with.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "test_support.h"

namespace ddpm::test {

// logits = linear_2(relu(linear_1(x))), x in model space (scripts/train_digits.py).
class DigitClassifier {
 public:
  DigitClassifier() {
    const auto file =
        detail::SafetensorsFile::open(source_file("models/digits_classifier.safetensors"));
    w1_ = file.at("linear_1.weight").to_floats();
    b1_ = file.at("linear_1.bias").to_floats();
    w2_ = file.at("linear_2.weight").to_floats();
    b2_ = file.at("linear_2.bias").to_floats();
    hidden_ = b1_.size();
    classes_ = b2_.size();
  }
  int classify(const float* x) const {
    std::vector<double> h(hidden_);
    for (std::size_t j = 0; j < hidden_; ++j) {
      double s = b1_[j];
      for (std::size_t k = 0; k < 64; ++k) s += w1_[j * 64 + k] * std::clamp(x[k], -1.0f, 1.0f);
      h[j] = std::max(s, 0.0);
    }
    int best = 0;
    double best_logit = -1e300;
    for (std::size_t c = 0; c < classes_; ++c) {
      double s = b2_[c];
      for (std::size_t j = 0; j < hidden_; ++j) s += w2_[c * hidden_ + j] * h[j];
      if (s > best_logit) {
        best_logit = s;
        best = static_cast<int>(c);
      }
    }
    return best;
  }

 private:
  std::vector<float> w1_, b1_, w2_, b2_;
  std::size_t hidden_ = 0, classes_ = 0;
};

// The share of the samples x ([labels.size(), 64], model space) that the
// classifier labels as `labels` says.
inline double share_classified_as(const DigitClassifier& classifier, const std::vector<float>& x,
                                  const std::vector<std::int32_t>& labels) {
  int correct = 0;
  for (std::size_t r = 0; r < labels.size(); ++r)
    correct += classifier.classify(x.data() + r * 64) == labels[r];
  return labels.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(labels.size());
}

}  // namespace ddpm::test
