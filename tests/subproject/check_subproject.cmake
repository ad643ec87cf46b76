# CTest script: configure a parent project that adds cuact as a subdirectory,
# on a machine where the parent has no GoogleTest, and check what cuact does
# to it: no tests or bench of its own (so no GoogleTest needed), no build type
# forced into the parent's cache, nothing of the bench installed, and a
# message naming the CUDA architectures it builds, with a warning when they
# are the parent's rather than cuact's default.
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(
  COMMAND ${CMAKE_COMMAND} -S "${PARENT_SOURCE_DIR}" -B "${WORK_DIR}" -G "${CMAKE_GENERATOR}"
          "-DCUACT_SOURCE_DIR=${CUACT_SOURCE_DIR}" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
          -DCMAKE_CUDA_ARCHITECTURES=90-real
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the parent project does not configure (${rc}):\n${out}\n${err}")
endif()
if(NOT out MATCHES "cuact: CUDA architectures 90-real \\(from the parent project\\)")
  message(FATAL_ERROR "cuact did not say which architectures it builds:\n${out}")
endif()
if(NOT err MATCHES "building for the parent project's CUDA architectures")
  message(FATAL_ERROR "cuact did not warn that the architectures are the parent's:\n${err}")
endif()
file(STRINGS "${WORK_DIR}/CMakeCache.txt" build_type REGEX "^CMAKE_BUILD_TYPE:")
if(build_type MATCHES "=Release")
  message(FATAL_ERROR "cuact forced a build type into the parent's cache: ${build_type}")
endif()
file(STRINGS "${WORK_DIR}/CMakeCache.txt" options REGEX "^CUACT_(BUILD_TESTS|BUILD_BENCH|INSTALL_BENCH):")
foreach(o IN LISTS options)
  if(NOT o MATCHES "=OFF$")
    message(FATAL_ERROR "a subproject default is on: ${o}")
  endif()
endforeach()
if(EXISTS "${WORK_DIR}/cuact/tests" OR EXISTS "${WORK_DIR}/cuact/bench")
  message(FATAL_ERROR "cuact added its tests or bench inside the parent")
endif()
file(GLOB_RECURSE install_scripts "${WORK_DIR}/cmake_install.cmake" "${WORK_DIR}/cuact/*.cmake")
foreach(f IN LISTS install_scripts)
  file(READ "${f}" text)
  if(text MATCHES "cuact-bench")
    message(FATAL_ERROR "the install would copy cuact-bench (${f})")
  endif()
endforeach()
message(STATUS "parent project configured: no GoogleTest needed, no tests, bench or build type imposed")
