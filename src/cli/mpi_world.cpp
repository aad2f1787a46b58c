// The World over MPI (built when CMake finds MPI: DDPM_HAVE_MPI).
#include "mpi_world.h"

// The C API only: Open MPI's and MPICH's mpi.h would otherwise pull in the
// deprecated C++ bindings, which need a library of their own.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>

#include "ddpm/error.h"

namespace ddpm::cli {

void World::start() {
  if (started_) return;
  started_ = true;
  const int launched = launcher_world_size();
  if (launched == 0 || launched == 1) return;  // a plain process: MPI is never touched
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Only the main thread calls MPI; the CPU backend's workers never do.
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  if (launched > 1 && size_ != launched) {
    // Each process would be a world of its own and run the whole job.
    throw Error("the MPI launcher started " + std::to_string(launched) +
                " processes but MPI sees " + std::to_string(size_) +
                ": this ddpm's MPI is not the launcher's (use the mpirun of the MPI ddpm was "
                "built with)");
  }
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
}

void World::finish() {
  if (finished_) return;
  finished_ = true;
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

std::vector<std::int64_t> World::all_gather(std::span<const std::int64_t> mine) const {
  if (size_ == 1) return {mine.begin(), mine.end()};
  std::vector<std::int64_t> all(mine.size() * static_cast<std::size_t>(size_));
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(),
                static_cast<int>(mine.size()), MPI_INT64_T, MPI_COMM_WORLD);
  return all;
}

std::string World::broadcast(const std::string& text, int root) const {
  if (size_ == 1) return text;
  std::uint64_t length = text.size();
  MPI_Bcast(&length, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
  std::string result = rank_ == root ? text : std::string(length, '\0');
  // In pieces: MPI counts are ints.
  constexpr std::uint64_t kPiece = 1u << 30;
  for (std::uint64_t done = 0; done < length; done += kPiece) {
    const auto n = static_cast<int>(std::min(kPiece, length - done));
    MPI_Bcast(result.data() + done, n, MPI_CHAR, root, MPI_COMM_WORLD);
  }
  return result;
}

}  // namespace ddpm::cli
