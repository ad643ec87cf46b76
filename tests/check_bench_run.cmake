# CTest script: run cuact-bench end to end as a user would: without a GPU the
# full run (its whole CPU part); with one, every operation at a small size and
# few runs. Checks its exit status, its labelled output and that its JSON and
# CSV files parse.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
execute_process(
  COMMAND "${BENCH}" --size 2^20 --runs 3 --no-progress
          --json "${WORK_DIR}/r.json" --csv "${WORK_DIR}/r.csv"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cuact-bench exited ${rc}\n${out}\n${err}")
endif()
if(NOT out MATCHES "no CUDA device \\(.*\\): GPU timing skipped" AND NOT out MATCHES "GPU: ")
  message(FATAL_ERROR "cuact-bench did not say whether it had a GPU:\n${out}")
endif()
file(READ "${WORK_DIR}/r.json" json)
string(JSON tool GET "${json}" tool)
string(JSON count LENGTH "${json}" results)
if(NOT tool STREQUAL "cuact-bench" OR count LESS 1)
  message(FATAL_ERROR "bad JSON (tool=${tool}, results=${count}):\n${json}")
endif()
string(JSON first_status GET "${json}" results 0 status)
if(NOT first_status STREQUAL "ok")
  message(FATAL_ERROR "first result is '${first_status}':\n${json}")
endif()
file(STRINGS "${WORK_DIR}/r.csv" csv_lines)
list(LENGTH csv_lines csv_count)
math(EXPR expected "${count} + 1")
if(NOT csv_count EQUAL expected)
  message(FATAL_ERROR "CSV has ${csv_count} lines, expected ${expected}")
endif()
# --list names every family's rows, the fused forms included.
execute_process(COMMAND "${BENCH}" --list RESULT_VARIABLE list_rc OUTPUT_VARIABLE list_out)
foreach(name gelu softmax "bias\\+gelu" "gelu\\+dropout" swiglu geglu prelu rrelu)
  if(NOT list_rc EQUAL 0 OR NOT list_out MATCHES "${name}")
    message(FATAL_ERROR "cuact-bench --list (exit ${list_rc}) does not name ${name}:\n${list_out}")
  endif()
endforeach()
message(STATUS "cuact-bench ran: ${count} results\n${out}")
