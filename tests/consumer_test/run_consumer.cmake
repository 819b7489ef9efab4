# Script mode: install, then build and run the consumer project. Fails on any step.
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}")
  endif()
endfunction()
file(REMOVE_RECURSE "${WORK}")
run_step(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK}/prefix")
# Without a GPU, Torch's CMake cannot detect an architecture: name one, as the main build does.
run_step(${CMAKE_COMMAND} -E env "TORCH_CUDA_ARCH_LIST=8.0 9.0"
         ${CMAKE_COMMAND} -S "${PROJECT_SOURCE}" -B "${WORK}/build"
         "-DCMAKE_PREFIX_PATH=${WORK}/prefix" "-DTorch_DIR=${TORCH_PREFIX}/Torch"
         -DCMAKE_BUILD_TYPE=Release)
run_step(${CMAKE_COMMAND} --build "${WORK}/build" -j 2)
run_step("${WORK}/build/consumer")
