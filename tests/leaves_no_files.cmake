# Runs a test program with TMPDIR pointing at an empty directory of its own
# and fails if the program leaves anything there: tests clean up after
# themselves, also when they pass. Used by cli_tests.cmake:
#   cmake -DPROGRAM=<test binary> -DDIR=<scratch dir> -P leaves_no_files.cmake
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
# Failing tests are reported by their own ctest entries; this one only looks
# at what is left.
execute_process(COMMAND "${CMAKE_COMMAND}" -E env "TMPDIR=${DIR}" "${PROGRAM}"
                OUTPUT_QUIET ERROR_QUIET)
file(GLOB left LIST_DIRECTORIES true "${DIR}/*" "${DIR}/.*")
if(left)
  message(FATAL_ERROR "${PROGRAM} left files in its TMPDIR:\n${left}")
endif()
file(REMOVE_RECURSE "${DIR}")
