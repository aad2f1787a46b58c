#include "parallel_for.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ddpm::cpu {

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

void parallel_for(std::int64_t count, int threads, const std::function<void(std::int64_t)>& body,
                  const std::function<void(std::int64_t done)>& on_wait) {
  if (count <= 0) return;
  const int workers = static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), count));
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&] {
    for (;;) {
      const std::int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= count || failed.load(std::memory_order_relaxed)) return;
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
      done.fetch_add(1, std::memory_order_relaxed);
    }
  };
  if (workers == 1 && !on_wait) {
    run();
  } else {
    // With a progress callback the calling thread only reports; otherwise it works too.
    const int spawned = on_wait ? workers : workers - 1;
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(spawned));
    for (int w = 0; w < spawned; ++w) pool.emplace_back(run);
    if (on_wait) {
      auto last_report = std::chrono::steady_clock::now();
      while (done.load() < count && !failed.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (std::chrono::steady_clock::now() - last_report < std::chrono::milliseconds(100)) continue;
        last_report = std::chrono::steady_clock::now();
        try {
          on_wait(done.load());
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          failed = true;
        }
      }
    } else {
      run();
    }
    for (std::thread& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace ddpm::cpu
