# CUDA backend tests, included by tests/CMakeLists.txt; ctest label `gpu`.
# Every GPU test starts with DDPM_SKIP_WITHOUT_GPU(), so on a machine without
# a usable device they are reported as skipped. test_gpu_unavailable checks
# what happens then (and skips itself where a GPU is usable).
#
# scripts/gpu-check runs the binaries directly ($BUILD/tests/test_gpu_*), so
# every test here must be in an executable named test_gpu_*.

function(ddpm_gpu_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE ddpm_reference ddpm::ddpm GTest::gtest_main)
  target_include_directories(${name} PRIVATE
    ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
  if(DDPM_HAVE_CUDA)
    target_link_libraries(${name} PRIVATE CUDA::cudart_static)
    set_target_properties(${name} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS gpu)
endfunction()

ddpm_gpu_test(test_gpu_unavailable gpu/test_gpu_unavailable.cpp)

if(DDPM_HAVE_CUDA)
  ddpm_gpu_test(test_gpu_forward gpu/test_gpu_forward.cpp)
  ddpm_gpu_test(test_gpu_reverse gpu/test_gpu_reverse.cpp gpu/noise_probe.cu)
  ddpm_gpu_test(test_gpu_sampling gpu/test_gpu_sampling.cpp)
  ddpm_gpu_test(test_gpu_rules gpu/test_gpu_rules.cpp)
  ddpm_gpu_test(test_gpu_schedule_memory gpu/test_gpu_schedule_memory.cpp)
  ddpm_gpu_test(test_gpu_predictors gpu/test_gpu_predictors.cpp)
  ddpm_gpu_test(test_gpu_user_predictor gpu/test_gpu_user_predictor.cpp gpu/user_predictor_kernel.cu)
  ddpm_gpu_test(test_gpu_mlp_predictor gpu/test_gpu_mlp_predictor.cpp)
  target_compile_definitions(test_gpu_mlp_predictor PRIVATE DDPM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  ddpm_gpu_test(test_gpu_unet2d gpu/test_gpu_unet2d.cpp)
  target_compile_definitions(test_gpu_unet2d PRIVATE DDPM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
