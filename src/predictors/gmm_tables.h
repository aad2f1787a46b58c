#pragma once
// A GMM spec as the tables the per-row math reads (host or device copy).
#include <vector>

#include "ddpm/predictor.h"
#include "kernels/gmm_math.cuh"

namespace ddpm::detail {

struct GmmTables {
  std::vector<double> log_weights;  // K, components of weight 0 left out
  std::vector<float> means;         // K x D
  std::vector<double> variances;    // K
  kernels::GmmParams params(std::int64_t dim) const;
};

GmmTables make_gmm_tables(const GmmSpec& spec);

}  // namespace ddpm::detail
