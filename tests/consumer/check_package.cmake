# CTest script: install cuact from its build tree to a fresh prefix, then
# configure, build and run the consumer project against that prefix alone.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

run_step(${CMAKE_COMMAND} --install "${CUACT_BUILD_DIR}" --prefix "${prefix}")
# The documents the installed headers cite come with them, and the license.
foreach(doc SPEC.md DESIGN.md API.md ACCURACY.md README.md CHANGELOG.md LICENSE)
  if(NOT EXISTS "${prefix}/share/doc/cuact/${doc}")
    message(FATAL_ERROR "the install lacks share/doc/cuact/${doc}")
  endif()
endforeach()
run_step(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build"
         -G "${CMAKE_GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release)
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run_step("${WORK_DIR}/build/consumer")
run_step("${WORK_DIR}/build/consumer_old_abi")
