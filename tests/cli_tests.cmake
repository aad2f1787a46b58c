# Included by tests/CMakeLists.txt: the .npy reader/writer and the ddpm
# program end to end (test_cli runs the built binary).
include(GoogleTest)

add_executable(test_npy test_npy.cpp)
target_link_libraries(test_npy PRIVATE ddpm::ddpm GTest::gtest_main ddpm_tmpdir_guard)
gtest_discover_tests(test_npy DISCOVERY_TIMEOUT 60 PROPERTIES LABELS cpu)


if(TARGET ddpm_cli)
  add_executable(test_cli test_cli.cpp test_cli_outputs.cpp test_cli_model.cpp test_cli_images.cpp
                          test_cli_inputs.cpp test_cli_unet.cpp)
  target_link_libraries(test_cli PRIVATE ddpm::ddpm GTest::gtest_main nlohmann_json::nlohmann_json
                                       ddpm_tmpdir_guard)
  # test_cli_model.cpp reads the committed model and classifier (src/io/safetensors.h).
  target_include_directories(test_cli PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(test_cli PRIVATE DDPM_CLI_PATH="$<TARGET_FILE:ddpm_cli>"
                                             DDPM_EXPECTED_VERSION="${PROJECT_VERSION}"
                                             DDPM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             DDPM_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
  add_dependencies(test_cli ddpm_cli)
  gtest_discover_tests(test_cli DISCOVERY_TIMEOUT 60 PROPERTIES LABELS cpu)

  # Chunked runs, and distributed ones under the MPI launcher (CPU backend)
  # when ddpm is built with MPI; 3 ranks on a 2-core machine need Open MPI's
  # --oversubscribe.
  set(DDPM_TEST_MPIEXEC "")
  if(DDPM_HAVE_MPI AND MPIEXEC_EXECUTABLE)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version
                    OUTPUT_VARIABLE mpiexec_version ERROR_QUIET)
    set(DDPM_TEST_MPIEXEC "${MPIEXEC_EXECUTABLE}")
    if(mpiexec_version MATCHES "Open MPI|OpenRTE")
      string(APPEND DDPM_TEST_MPIEXEC " --oversubscribe")
    endif()
  endif()
  add_executable(test_scale_out test_scale_out.cpp)
  target_link_libraries(test_scale_out PRIVATE ddpm::ddpm GTest::gtest_main
                                               nlohmann_json::nlohmann_json ddpm_tmpdir_guard)
  target_compile_definitions(test_scale_out PRIVATE
    DDPM_CLI_PATH="$<TARGET_FILE:ddpm_cli>"
    DDPM_MPIEXEC="${DDPM_TEST_MPIEXEC}"
    DDPM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_dependencies(test_scale_out ddpm_cli)
  gtest_discover_tests(test_scale_out DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "cpu;mpi")
endif()
