// The World in a build without MPI: always one process.
#include "ddpm/error.h"
#include "mpi_world.h"

namespace ddpm::cli {

void World::start() {
  if (started_) return;
  started_ = true;
  if (const int launched = launcher_world_size(); launched > 1) {
    throw Error("this ddpm was built without MPI, but an MPI launcher started it as one of " +
                std::to_string(launched) +
                " processes: each would run the whole job; rebuild with MPI "
                "(scripts/install-deps installs Open MPI) or run one process");
  }
}

void World::finish() { finished_ = true; }

std::vector<std::int64_t> World::all_gather(std::span<const std::int64_t> mine) const {
  return {mine.begin(), mine.end()};
}

std::string World::broadcast(const std::string& text, int) const { return text; }

}  // namespace ddpm::cli
