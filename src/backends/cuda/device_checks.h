#pragma once
// Checks on the arrays of a Memory::device request: that they are memory the
// device can address, and that outputs do not partly overlap inputs or each
// other (a kernel thread reads and writes only its own elements, so an output
// may be exactly an input, in place, but not overlap it partly).
#include <cstddef>
#include <initializer_list>

namespace ddpm::detail::cuda {

// Throws ddpm::Error naming `what` unless `p` (when set) is device memory of
// `device`, managed memory, or pinned host memory mapped at the same address.
void check_device_pointer(const void* p, int device, const char* what);

// Throws unless out and in (count floats each) are the same array or disjoint.
void check_overlap(const void* out, const void* in, std::size_t count, const char* out_name,
                   const char* in_name);

// Throws unless the outputs (count floats each, null ones skipped) are disjoint.
void check_disjoint(std::initializer_list<const float*> outputs, std::size_t count);

}  // namespace ddpm::detail::cuda
