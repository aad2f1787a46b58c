#pragma once
// How a plan's loop history is laid out (SampleRequest::history,
// Sampler::history_size()): slots of [batch, dim] floats, first the x0_hats
// of the last x0_slots steps (the previous step's first), then, for rules
// that keep it, the previous step's sample.
namespace ddpm::detail {

struct HistoryLayout {
  int x0_slots = 0;
  bool last_sample = false;

  int slots() const { return x0_slots + (last_sample ? 1 : 0); }
  // Beyond dpmpp_2m's one previous x0_hat: the rules the engines run
  // through their deep-history step (dpmpp_3m, unipc, heun).
  bool deep() const { return x0_slots > 1 || last_sample; }
  int last_sample_slot() const { return x0_slots; }
};

}  // namespace ddpm::detail
