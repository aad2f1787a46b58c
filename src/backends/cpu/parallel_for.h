#pragma once
// A minimal fork-join loop over [0, count) on worker threads. Which thread
// runs an index never changes a result: the CPU backend's work items are pure
// functions of their index.
#include <cstdint>
#include <functional>

namespace ddpm::cpu {

// Threads to use for `requested` (0 = all hardware threads).
int resolve_threads(int requested);

// Calls body(i) for every i in [0, count) on up to `threads` threads, the
// calling thread among them (the others from a pool kept between calls). While it waits, the calling thread calls
// on_wait(done) every ~100 ms when it is set. The first exception thrown by a
// body is rethrown after all threads stop.
void parallel_for(std::int64_t count, int threads, const std::function<void(std::int64_t)>& body,
                  const std::function<void(std::int64_t done)>& on_wait = {});

}  // namespace ddpm::cpu
