#include "parallel_for.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <pthread.h>

namespace ddpm::cpu {
namespace {

// Threads kept between parallel_for calls: a network's forward pass makes
// hundreds of small parallel passes, and starting threads for each would
// cost more than the work (about 30 us a thread). One caller at a time uses
// it; a second caller, or a body that itself calls parallel_for, starts
// threads of its own instead.
class WorkerPool {
 public:
  static WorkerPool& instance() {
    static WorkerPool pool;
    return pool;
  }
  WorkerPool() {
    pthread_atfork(nullptr, nullptr, [] { instance().forget_threads(); });
  }
  ~WorkerPool() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Runs `job` on the calling thread and on up to `helpers` pool threads;
  // returns when every thread that started it has finished. False (nothing
  // run) when the pool is in use.
  bool run(int helpers, const std::function<void()>& job) {
    if (in_worker_) return false;
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(threads_.size()) < helpers) threads_.emplace_back([this] { work(); });
      job_ = &job;
      wanted_ = helpers;
      ++generation_;
    }
    wake_.notify_all();
    job();
    std::unique_lock<std::mutex> lock(mutex_);
    wanted_ = 0;  // helpers that have not woken yet are not needed any more
    done_.wait(lock, [this] { return active_ == 0; });
    job_ = nullptr;
    return true;
  }

 private:
  // In the child of a fork: the pool's threads did not come along (nor did
  // any lock another thread held). Start afresh; the old thread objects are
  // let go without a join, which could never return.
  void forget_threads() {
    new (&busy_) std::mutex;
    new (&mutex_) std::mutex;
    new (&wake_) std::condition_variable;
    new (&done_) std::condition_variable;
    new std::vector<std::thread>(std::move(threads_));  // leaked on purpose
    threads_.clear();
    job_ = nullptr;
    wanted_ = active_ = 0;
  }

  void work() {
    in_worker_ = true;
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || (generation_ != seen && wanted_ > 0); });
      if (stop_) return;
      seen = generation_;
      --wanted_;
      ++active_;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      if (--active_ == 0) done_.notify_all();
    }
  }

  std::mutex busy_;   // held by the caller using the pool
  std::mutex mutex_;  // guards what follows
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const std::function<void()>* job_ = nullptr;
  int wanted_ = 0, active_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  static thread_local bool in_worker_;
};

thread_local bool WorkerPool::in_worker_ = false;

}  // namespace

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
  } else if (!on_wait && WorkerPool::instance().run(workers - 1, run)) {
    // done on the pool's threads
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
