# CTest script: run cuact-bench end to end as a user would: without a GPU the
# full run (its whole CPU part); with one, every operation at a small size and
# few runs. Checks its exit status, its labelled output and that its JSON and
# CSV files parse.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
execute_process(
  COMMAND "${BENCH}" --size 2^18 --runs 3 --no-progress
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
# Unknown names are an error that lists the valid ones (names are case-sensitive).
execute_process(COMMAND "${BENCH}" --op GELU --no-progress RESULT_VARIABLE bad_rc
                OUTPUT_VARIABLE bad_out ERROR_VARIABLE bad_err)
if(bad_rc EQUAL 0 OR NOT bad_err MATCHES "unknown operation 'GELU'.*softmax.*gelu")
  message(FATAL_ERROR "--op GELU: exit ${bad_rc}, stderr:\n${bad_err}")
endif()
# Repeated options add; every selected row appears (softmax marked as needing a
# GPU where there is none); an output that cannot be written fails the run.
execute_process(COMMAND "${BENCH}" --op gelu --op silu,softmax --dtype f32 --direction forward
                --size 2^12 --runs 1 --no-progress --json "${WORK_DIR}/sel.json"
                RESULT_VARIABLE sel_rc OUTPUT_VARIABLE sel_out ERROR_VARIABLE sel_err)
file(READ "${WORK_DIR}/sel.json" sel)
if(NOT sel_rc EQUAL 0 OR NOT sel MATCHES "\"op\": \"gelu\"" OR NOT sel MATCHES "\"op\": \"silu\""
   OR NOT sel MATCHES "\"op\": \"softmax\"")
  message(FATAL_ERROR "repeated --op (exit ${sel_rc}) did not give gelu, silu and softmax rows:\n${sel}\n${sel_err}")
endif()
if(sel_out MATCHES "GPU timing skipped" AND NOT sel MATCHES "needs a GPU")
  message(FATAL_ERROR "without a GPU the softmax row is not marked as needing one:\n${sel}")
endif()
execute_process(COMMAND "${BENCH}" --op gelu --dtype f32 --direction forward --size 2^12 --runs 1
                --no-progress --json "${WORK_DIR}/no/such/dir/r.json"
                RESULT_VARIABLE w_rc OUTPUT_VARIABLE w_out ERROR_VARIABLE w_err)
string(REGEX MATCHALL "cannot write" w_count "${w_err}")
list(LENGTH w_count w_n)
if(w_rc EQUAL 0 OR NOT w_n EQUAL 1)
  message(FATAL_ERROR "an unwritable --json: exit ${w_rc}, ${w_n} 'cannot write' lines:\n${w_err}")
endif()
message(STATUS "cuact-bench ran: ${count} results\n${out}")
