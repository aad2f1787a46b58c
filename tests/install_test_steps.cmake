# Steps of the Install.* tests (run with cmake -P): with BUILD_DIR, install it
# into a scratch prefix and build the consumer against it with find_package;
# with DDPM_SOURCE_DIR, build the consumer with ddpm as a subdirectory.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()
if(DDPM_SOURCE_DIR)
  set(how -DDDPM_SOURCE_DIR=${DDPM_SOURCE_DIR} -DDDPM_ENABLE_CUDA=OFF)
else()
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  if(NOT EXISTS ${WORK_DIR}/prefix/bin/ddpm)
    message(FATAL_ERROR "cmake --install did not install the ddpm CLI into bin/")
  endif()
  set(how -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=Release ${how})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build --target consumer)
run(${WORK_DIR}/build/consumer)
