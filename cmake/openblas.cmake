# OpenBLAS, the BLAS of MlpPredictor's CPU forward pass (Debian: libopenblas-dev).
# Sets DDPM_OPENBLAS_LIBRARY and DDPM_OPENBLAS_INCLUDE_DIR, the folder of
# OpenBLAS's own cblas.h (it declares openblas_set_num_threads, which the
# reference CBLAS's cblas.h does not). pkg-config's "openblas" first, then
# the usual places; -DDDPM_OPENBLAS_LIBRARY=... -DDDPM_OPENBLAS_INCLUDE_DIR=...
# override both.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(DDPM_OPENBLAS_PC QUIET openblas)
endif()
find_library(DDPM_OPENBLAS_LIBRARY NAMES openblas
  HINTS ${DDPM_OPENBLAS_PC_LIBRARY_DIRS}
  PATH_SUFFIXES openblas-pthread openblas-openmp openblas)
find_path(DDPM_OPENBLAS_INCLUDE_DIR NAMES openblas_config.h
  HINTS ${DDPM_OPENBLAS_PC_INCLUDE_DIRS}
  PATH_SUFFIXES openblas-pthread openblas-openmp openblas x86_64-linux-gnu/openblas-pthread
                aarch64-linux-gnu/openblas-pthread)
if(NOT DDPM_OPENBLAS_LIBRARY OR NOT DDPM_OPENBLAS_INCLUDE_DIR
   OR NOT EXISTS "${DDPM_OPENBLAS_INCLUDE_DIR}/cblas.h")
  message(FATAL_ERROR "ddpm needs OpenBLAS with its CBLAS header (Debian/Ubuntu: apt-get install "
                      "libopenblas-dev; scripts/install-deps does it). Found library "
                      "'${DDPM_OPENBLAS_LIBRARY}', headers '${DDPM_OPENBLAS_INCLUDE_DIR}'.")
endif()
message(STATUS "ddpm: OpenBLAS ${DDPM_OPENBLAS_PC_VERSION} ${DDPM_OPENBLAS_LIBRARY}")
