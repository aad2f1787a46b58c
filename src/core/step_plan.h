#pragma once
// The plan of a sampler: its timesteps and, for each, the coefficients of the
// reverse update (ddpm::PlannedStep, double), and their float records for
// the kernels (kernels/step_rule.cuh).
#include <vector>

#include "ddpm/sampler.h"
#include "history_layout.h"
#include "kernels/step_coefficients.cuh"
#include "kernels/step_rule.cuh"

namespace ddpm::detail {

// Validates the options against the schedule (throws ddpm::Error naming the
// option) and plans every step. Steps that cannot run carry an error, which
// is thrown when a request uses them (check_plan_range).
struct Plan {
  std::vector<PlannedStep> steps;
  double initial_noise_scale = 1.0;
  HistoryLayout history;
};
Plan make_plan(const Schedule& schedule, const SamplerOptions& options);
// make_plan checks the options first (ddpm::check_options, sampler_options.h).

// The float record of a planned step; the model-output side of the
// conversion is folded in for the plain layout.
kernels::StepRecord make_step_record(const PlannedStep& step);
std::vector<kernels::StepRecord> make_step_records(const std::vector<PlannedStep>& plan);

// The step at first order: a second-order step whose history is missing
// (the first step of a piece started without it) takes the previous x0_hat
// to be this one, which is the first-order update.
PlannedStep first_order(PlannedStep step);

// The history a deep rule's step reads and writes: whether it combines
// earlier steps' outputs (so that a loop piece starting there needs them).
bool reads_history(const PlannedStep& step);
// The slots of `layout` that a deep rule's step reads.
std::vector<int> history_slots_read(const PlannedStep& step, const HistoryLayout& layout);
// Throws ddpm::Error when a deep rule's run starts at plan position
// `position`, which combines earlier outputs, without the history (`what`
// names the request's field).
void require_history(const std::vector<PlannedStep>& plan, const SamplerOptions& options, int position,
                     bool given, const char* what);

// The float record of a deep rule's step (kernels/step_rule.cuh DeepRecord).
kernels::DeepRecord make_deep_record(const PlannedStep& step);

// Whether any step of plan[first .. last] combines two model outputs.
bool multistep(const std::vector<PlannedStep>& plan, int first, int last);

// Whether the loop forms x0_hat: to clip or threshold it.
kernels::X0Mode x0_mode(const SamplerOptions& options);

// Throws the first error of plan[first .. last].
void check_plan_range(const std::vector<PlannedStep>& plan, int first, int last);

// The position of timestep t in the plan; throws ddpm::Error when it is not
// one, or when it is more than one (Karras timesteps that round alike).
int plan_position(const std::vector<PlannedStep>& plan, int t, const char* what);
// `index` itself, checked to be a position in the plan.
int plan_index(const std::vector<PlannedStep>& plan, int index, const char* what);

// The float forward coefficients of every timestep of the schedule.
std::vector<kernels::ForwardCoefficients> make_forward_table(const Schedule& schedule);

}  // namespace ddpm::detail
