#pragma once
// Everything a user of the library needs.
#include "ddpm/chunked_output.h"
#include "ddpm/error.h"
#include "ddpm/image.h"
#include "ddpm/mlp_predictor.h"
#include "ddpm/model.h"
#include "ddpm/npy.h"
#include "ddpm/predictor.h"
#include "ddpm/sampler.h"
#include "ddpm/schedule.h"
#include "ddpm/scheduler_config.h"
#include "ddpm/shard.h"
#include "ddpm/types.h"
