#!/usr/bin/env bash
# Chunked and distributed runs of the ddpm program on this machine, CPU
# backend (README, "Scale-out"):
#   1. rows/s of `ddpm sample` (gaussian, 3072 elements, T = 1000) for 1 rank
#      (1 thread and every core) and 2 and 4 ranks under mpirun (1 thread
#      each), with the speedup over 1 rank x 1 thread and the efficiency
#      (speedup / cores the ranks can use);
#   2. write bandwidth of a write-bound run (one step, so nearly all its time
#      is drawing x_T and writing it, chunk by chunk, each made durable with
#      fdatasync) against `dd conv=fdatasync` of the same bytes to the same disk;
#   3. peak RSS (GNU time's maximum resident set) of that run for N = 10^5
#      and 10^6 rows of 3072: flat, since a process holds one chunk at a time.
# The 10^6-row run writes 12.3 GB into WORK_DIR (removed afterwards);
# --quick skips it and uses fewer rows in step 1.
#   bench/scale_out.sh [--quick] [BUILD_DIR (build)] [WORK_DIR (BUILD_DIR/scale-out)]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
build="${1:-build}"
work="${2:-$build/scale-out}"
ddpm="$build/src/cli/ddpm"
[ -x "$ddpm" ] || { echo "scale_out.sh: no $ddpm; build first (scripts/test or cmake --build)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "scale_out.sh: no mpirun (scripts/install-deps installs Open MPI)" >&2; exit 1; }
mkdir -p "$work"
trap 'rm -f "$work"/*.npy "$work"/*.npy.* "$work"/dd.bin' EXIT

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # as root (containers)
cores=$(nproc)
dim=3072
rows=$((quick ? 256 : 2048))
repeats=$((quick ? 1 : ${REPEATS:-3}))

seconds_of() {  # seconds_of COMMAND...: the wall time of a successful run
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/stderr.txt" || { cat "$work/stderr.txt" >&2; return 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

median_seconds() {  # median_seconds COMMAND...: the median wall time of $repeats runs
  local times=()
  for ((i = 0; i < repeats; i++)); do times+=("$(seconds_of "$@")"); done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

echo "# ddpm scale-out, $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
echo
echo "## 1. Throughput: sample, gaussian, ${rows}x$dim, T = 1000, CPU backend (median of $repeats)"
echo
echo "| ranks x threads | seconds | rows/s | speedup vs 1x1 | efficiency |"
echo "|---|---|---|---|---|"
job=(sample --mean 0.5 --std 0.3 --shape "$rows,$dim" --seed 1 --backend cpu)
base=""
for config in "1 1" "1 $cores" "2 1" "4 1"; do
  read -r ranks threads <<<"$config"
  if [ "$ranks" -eq 1 ]; then
    t=$(median_seconds "$ddpm" "${job[@]}" --threads "$threads" --out "$work/t.npy")
  else
    t=$(median_seconds mpirun --oversubscribe -np "$ranks" "$ddpm" "${job[@]}" \
                       --threads "$threads" --out "$work/t.npy")
  fi
  rate=$(awk -v n="$rows" -v t="$t" 'BEGIN { printf "%.1f", n / t }')
  [ -n "$base" ] || base=$rate
  used=$((ranks * threads < cores ? ranks * threads : cores))
  awk -v r="$rate" -v b="$base" -v u="$used" -v c="$ranks x $threads" -v t="$t" \
    'BEGIN { printf "| %s | %s | %s | %.2f | %.0f%% |\n", c, t, r, r / b, 100 * r / b / u }'
  rm -f "$work/t.npy"
done

echo
echo "## 2-3. Write-bound runs (sample --steps 1, 1 rank, automatic chunks) vs dd; peak RSS"
echo
echo "| rows x $dim | bytes | ddpm seconds | ddpm MB/s | dd MB/s (conv=fdatasync, bs=64M) | ddpm / dd | peak RSS |"
echo "|---|---|---|---|---|---|---|"
sizes=(100000)
[ "$quick" -eq 1 ] && sizes=(20000)
[ "$quick" -eq 0 ] && sizes+=(1000000)
for n in "${sizes[@]}"; do
  bytes=$((n * dim * 4 + 128))
  # GNU time: elapsed seconds and maximum resident set (KiB); the median
  # time and the largest RSS of the runs (one for 10^6 rows).
  runs=$((n >= 1000000 ? 1 : repeats))
  : >"$work/time.txt"
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -a -f "%e %M" -o "$work/time.txt" "$ddpm" sample --mean 0 --std 1 --steps 1 \
      --shape "$n,$dim" --seed 1 --backend cpu --chunk-rows auto --out "$work/w.npy" \
      --progress-interval 1e9 >/dev/null
    rm -f "$work/w.npy"
  done
  t=$(sort -n "$work/time.txt" | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
  rss=$(sort -n -k2 "$work/time.txt" | tail -1 | awk '{ print $2 }')
  blocks=$(((bytes + 67108863) / 67108864))
  d=$(repeats=$runs median_seconds dd if=/dev/zero of="$work/dd.bin" bs=64M count="$blocks" conv=fdatasync \
                     status=none)
  rm -f "$work/dd.bin"
  awk -v n="$n" -v b="$bytes" -v t="$t" -v d="$d" -v blocks="$blocks" -v rss="$rss" 'BEGIN {
    ours = b / t / 1e6; theirs = blocks * 67108864 / d / 1e6
    printf "| %d | %.2f GB | %.2f | %.0f | %.0f | %.0f%% | %.0f MiB |\n", n, b / 1e9, t, ours, theirs,
           100 * ours / theirs, rss / 1024 }'
done
rm -f "$work/time.txt" "$work/stderr.txt"
