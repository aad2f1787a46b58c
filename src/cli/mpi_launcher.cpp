// What the builds with and without MPI share: the one World, and whether an
// MPI launcher started this process, read from the environment it sets.
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "mpi_world.h"

namespace ddpm::cli {

World& World::get() {
  static World world;
  return world;
}

int launcher_world_size() {
  // Open MPI's mpirun, MPICH/Intel MPI's Hydra (and Slurm's PMI-2),
  // MVAPICH2. Slurm's own variables are not used: a batch script's shell has
  // them too, and a plain ddpm run there is one process.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"}) {
    const char* value = std::getenv(name);
    if (value == nullptr) continue;
    int size = 0;
    const char* end = value + std::strlen(value);
    const auto [stop, error] = std::from_chars(value, end, size);
    if (error == std::errc() && stop == end && size > 0) return size;
  }
  // A PMIx launcher (srun --mpi=pmix, prterun) names the rank, not the size.
  return std::getenv("PMIX_RANK") != nullptr ? -1 : 0;
}

}  // namespace ddpm::cli
