#pragma once
// The processes of one run: this process alone, or the ranks of an MPI job
// (mpirun, mpiexec, srun). MPI is started only for a process that an MPI
// launcher started among several, so ddpm without mpirun (or under
// `mpirun -np 1`) runs exactly as a plain program. Without MPI support in
// the build (-DDDPM_ENABLE_MPI=OFF or no MPI found), a process an MPI
// launcher started among several refuses to run rather than have every rank
// do the whole job.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ddpm::cli {

class World {
 public:
  // The one world of this process.
  static World& get();

  // Starts MPI when the process was launched as one of several ranks
  // (idempotent); throws ddpm::Error when that needs MPI and the build has none.
  void start();
  // Ends MPI (idempotent); every rank calls it before it exits.
  void finish();

  int rank() const { return rank_; }
  int size() const { return size_; }
  // The rank among the ranks on this machine, and how many there are.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool distributed() const { return size_ > 1; }

  // Collective: every rank passes the same number of values and gets every
  // rank's, rank after rank.
  std::vector<std::int64_t> all_gather(std::span<const std::int64_t> mine) const;
  // Collective: `root`'s text, on every rank.
  std::string broadcast(const std::string& text, int root) const;

 private:
  World() = default;
  bool started_ = false;
  bool finished_ = false;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
};

// How many processes the MPI launcher that started this one says the job
// has (0 when no launcher started it): Open MPI, MPICH/Hydra, PMIx or Slurm
// with PMI set these variables before the process starts.
int launcher_world_size();

}  // namespace ddpm::cli
