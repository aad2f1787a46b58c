#include "step_tables.h"

#include "check.h"
#include "core/step_plan.h"
#include "tuning.h"

namespace ddpm::detail::cuda {
namespace {

std::vector<float> packed(const std::vector<kernels::StepRecord>& records, bool full) {
  const int width = kernels::record_width(full);
  std::vector<float> out(records.size() * static_cast<std::size_t>(width));
  for (std::size_t i = 0; i < records.size(); ++i) {
    kernels::pack_step_record(records[i], full, out.data() + i * static_cast<std::size_t>(width));
  }
  return out;
}

template <typename T>
void upload(DeviceBuffer<T>& buffer, const std::vector<T>& values, const char* what,
            cudaStream_t stream) {
  buffer.allocate(values.size(), what);
  DDPM_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), values.data(), values.size() * sizeof(T),
                                  cudaMemcpyHostToDevice, stream));
}

}  // namespace

DeviceStepTables::DeviceStepTables(int device, const Schedule& schedule,
                                   const std::vector<PlannedStep>& plan, bool loop_full,
                                   cudaStream_t stream)
    : loop_full_(loop_full) {
  const std::vector<kernels::StepRecord> records = make_step_records(plan);
  const std::vector<float> plain = packed(records, false);
  const std::vector<float> full = packed(records, true);
  std::vector<PlannedStep> first_order_plan;
  for (const PlannedStep& step : plan) first_order_plan.push_back(first_order(step));
  const std::vector<float> first_order = packed(make_step_records(first_order_plan), true);
  upload(plain_, plain, "the sampler's step records", stream);
  upload(full_, full, "the sampler's step records", stream);
  upload(first_order_, first_order, "the sampler's step records", stream);
  upload(forward_, make_forward_table(schedule), "the schedule's forward table", stream);
  if (tuning().use_constant_schedule) {
    const std::vector<float>& loop = loop_full ? full : plain;
    region_ = ConstantRegion::acquire(device, static_cast<int>(loop.size()));
    if (region_.valid()) {
      kernels::upload_constant_records(region_.offset(), loop.data(), static_cast<int>(loop.size()),
                                       stream);
    }
  }
  // Uploaded before any request: later launches on any stream see it (the
  // host vectors also die here).
  DDPM_CUDA_CHECK(cudaStreamSynchronize(stream));
}

kernels::StepView DeviceStepTables::loop_view() const {
  kernels::StepView v = view(loop_full_);
  v.constant_offset = region_.valid() ? region_.offset() : -1;
  return v;
}

kernels::StepView DeviceStepTables::first_order_view() const {
  kernels::StepView v;
  v.records = first_order_.data();
  v.width = kernels::kRecordWidthFull;
  return v;
}

kernels::StepView DeviceStepTables::view(bool full) const {
  kernels::StepView v;
  v.records = full ? full_.data() : plain_.data();
  v.width = kernels::record_width(full);
  return v;
}

}  // namespace ddpm::detail::cuda
