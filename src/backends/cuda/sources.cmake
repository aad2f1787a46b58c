# The CUDA backend, added to target ddpm by src/CMakeLists.txt when a CUDA
# compiler is found. Kernels live in kernels/*.cu, the host driver in
# src/backends/cuda/, a network's device part in src/predictors/networks/<name>/.
option(DDPM_PTXAS_VERBOSE "Print ptxas register and spill usage of every kernel" OFF)

target_sources(ddpm PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/check.cpp
  ${CMAKE_CURRENT_LIST_DIR}/constant_arena.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_loop.cpp
  ${CMAKE_CURRENT_LIST_DIR}/device_checks.cpp
  ${CMAKE_CURRENT_LIST_DIR}/staging.cpp
  ${CMAKE_CURRENT_LIST_DIR}/step_tables.cpp
  ${CMAKE_CURRENT_LIST_DIR}/device.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tuning.cpp
  ${PROJECT_SOURCE_DIR}/kernels/sampling_kernels.cu
  ${PROJECT_SOURCE_DIR}/kernels/predictor_kernels.cu
  ${PROJECT_SOURCE_DIR}/kernels/cuda_check.cpp
  ${PROJECT_SOURCE_DIR}/src/predictors/device_predictors.cpp
  ${PROJECT_SOURCE_DIR}/src/predictors/networks/mlp/mlp_device.cpp
  ${PROJECT_SOURCE_DIR}/src/predictors/networks/mlp/mlp_kernels.cu)

# cuDNN for UNet2DPredictor's convolutions on the device (the toolkit's
# libcudnn, linked shared). Without it the U-Net runs on the host only.
find_path(DDPM_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
find_library(DDPM_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
if(DDPM_CUDNN_INCLUDE_DIR AND DDPM_CUDNN_LIBRARY)
  target_sources(ddpm PRIVATE
    ${PROJECT_SOURCE_DIR}/kernels/cudnn_check.cpp
    ${PROJECT_SOURCE_DIR}/src/predictors/networks/unet2d/unet2d_device.cpp
    ${PROJECT_SOURCE_DIR}/src/predictors/networks/unet2d/unet2d_kernels.cu)
  target_include_directories(ddpm SYSTEM PRIVATE ${DDPM_CUDNN_INCLUDE_DIR})
  target_link_libraries(ddpm PRIVATE ${DDPM_CUDNN_LIBRARY})
  target_compile_definitions(ddpm PRIVATE DDPM_HAVE_CUDNN=1)
  message(STATUS "ddpm: cuDNN ${DDPM_CUDNN_LIBRARY}")
else()
  message(STATUS "ddpm: no cuDNN found: UNet2DModel runs on the host only")
endif()

# Whole-program device code: each .cu is one module, so the constant schedule
# arena and the kernels that read it share kernels/sampling_kernels.cu.
# The CUDA runtime is linked statically (CMAKE_CUDA_RUNTIME_LIBRARY Static at
# the top); cuRAND's device API is header-only and needs no library.
set_target_properties(ddpm PROPERTIES
  CUDA_SEPARABLE_COMPILATION OFF
  CUDA_RUNTIME_LIBRARY Static
  EXPORT_COMPILE_COMMANDS ON)
target_link_libraries(ddpm PRIVATE CUDA::cudart_static)
# cuBLAS for MlpPredictor's GEMMs: static where the toolkit ships it (it
# brings cublasLt_static and culibos along), the shared library otherwise
# (then libcublas.so must be found at run time, as on the GPU machines).
if(TARGET CUDA::cublas_static)
  target_link_libraries(ddpm PRIVATE CUDA::cublas_static)
  set(DDPM_CUBLAS_LINK static)
else()
  target_link_libraries(ddpm PRIVATE CUDA::cublas)
  set(DDPM_CUBLAS_LINK shared)
endif()
message(STATUS "ddpm: cuBLAS linked ${DDPM_CUBLAS_LINK}")
target_compile_definitions(ddpm PRIVATE DDPM_HAVE_CUDA=1)
target_compile_options(ddpm PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>
  $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${DDPM_PTXAS_VERBOSE}>>:-Xptxas=-v>)

# Named in the "no usable kernel image" message of cuda_device_usable().
string(REPLACE ";" " " DDPM_CUDA_ARCHITECTURES_TEXT "${CMAKE_CUDA_ARCHITECTURES}")
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/device.cpp APPEND PROPERTY
  COMPILE_DEFINITIONS "DDPM_CUDA_ARCHITECTURES=\"${DDPM_CUDA_ARCHITECTURES_TEXT}\"")
