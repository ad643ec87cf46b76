# CTest script: run cuact-bench end to end as a user would: without a GPU the
# default run (what is known without one: the activations' functors and the
# softmax and fused rows' kernel code checked on the host, the static model's
# predictions); with one, every operation at a small size and few runs. Checks its exit status, its labelled output and that its JSON and
# CSV files parse, then the argument errors and the files it cannot write.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
# (No --no-progress: CTest's pipe is not a terminal, so no \r progress either.)
execute_process(
  COMMAND "${BENCH}" --size 2^18 --runs 3 --json "${WORK_DIR}/r.json" --csv "${WORK_DIR}/r.csv"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cuact-bench exited ${rc}\n${out}\n${err}")
endif()
if(out MATCHES "^GPU: ")
  set(gpu TRUE)
elseif(out MATCHES "^cuact-bench: [^\n]*: nothing is timed")
  set(gpu FALSE)
else()
  message(FATAL_ERROR "cuact-bench did not say on its first line whether it had a GPU:\n${out}")
endif()
if("${out}${err}" MATCHES "\r")
  message(FATAL_ERROR "progress lines (\\r) went to a pipe:\n${err}")
endif()
if(NOT gpu)
  # Short: one line per operation, accuracy and prediction; no CPU timings.
  # Every row is checked on the host: the activations' functors, the softmax
  # and fused rows' kernel code (a verdict per row, labelled as such).
  string(REGEX MATCHALL "\n" lines "${out}")
  list(LENGTH lines line_count)
  foreach(want "no GPU/driver found"
          "\ngelu( +[0-9]+/[0-9]+)+ +pass +functors +[01]\\.[0-9][0-9] / [01]\\.[0-9][0-9]\n"
          "\nsoftmax( +[01]\\.[0-9][0-9])+ +pass +kernel code +[01]\\.[0-9][0-9] / [01]\\.[0-9][0-9]\n"
          "\nbias\\+gelu( +ok)+ +pass +kernel code " "\nrrelu( +ok)+ +pass +kernel code "
          "0 of [0-9]+ results outside the contract"
          "kernel code: the kernels' own code run on the host \\(CPU emulators, not a GPU\\)"
          "\n +0 of [0-9]+ results outside the rule\n"
          "predicted: the static model of libcuact's sm_90" "every row: --verbose")
    if(NOT out MATCHES "${want}")
      message(FATAL_ERROR "the output without a GPU lacks '${want}':\n${out}")
    endif()
  endforeach()
  if(line_count GREATER 60 OR out MATCHES "GB/s|skipped|not run without a GPU")
    message(FATAL_ERROR "the output without a GPU is ${line_count} lines or shows timings:\n${out}")
  endif()
endif()
file(READ "${WORK_DIR}/r.json" json)
string(JSON tool GET "${json}" tool)
string(JSON count LENGTH "${json}" results)
if(NOT tool STREQUAL "cuact-bench" OR count LESS 1)
  message(FATAL_ERROR "bad JSON (tool=${tool}, results=${count}):\n${json}")
endif()
string(JSON first_status GET "${json}" results 0 status)
string(JSON copy_type TYPE "${json}" results 0 copy_fraction)
string(JSON predicted_type TYPE "${json}" results 0 predicted_copy_fraction)
if(gpu AND NOT first_status STREQUAL "ok")
  message(FATAL_ERROR "first result is '${first_status}':\n${json}")
endif()
# Without a GPU nothing is measured: null, not 0; the prediction is there.
if(NOT gpu AND (NOT first_status STREQUAL "not_run" OR NOT copy_type STREQUAL "NULL"
                OR NOT predicted_type STREQUAL "OBJECT"))
  message(FATAL_ERROR "first result without a GPU: status ${first_status}, copy_fraction "
    "${copy_type}, predicted_copy_fraction ${predicted_type}:\n${json}")
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
if(NOT bad_rc EQUAL 2 OR NOT bad_err MATCHES "unknown operation 'GELU'.*gelu.*softmax")
  message(FATAL_ERROR "--op GELU: exit ${bad_rc}, stderr:\n${bad_err}")
endif()
# An option missing its value (last, or followed by another option) is a
# usage error, exit 2, before any work.
foreach(args "--op;--dtype;f32" "--dtype;f32;--op")
  execute_process(COMMAND "${BENCH}" ${args} RESULT_VARIABLE v_rc OUTPUT_VARIABLE v_out
                  ERROR_VARIABLE v_err)
  if(NOT v_rc EQUAL 2 OR NOT v_err MATCHES "--op needs a value\nusage: cuact-bench" OR v_out)
    message(FATAL_ERROR "cuact-bench ${args}: exit ${v_rc}, stdout:\n${v_out}\nstderr:\n${v_err}")
  endif()
endforeach()
# Repeated options add; every selected row appears (without a GPU: the
# softmax and fused rows checked on the host, with their verdict; the
# activations not run).
execute_process(COMMAND "${BENCH}" --op gelu --op silu,softmax --op swiglu --dtype f32
                --direction forward --size 2^12 --runs 1 --no-progress --json "${WORK_DIR}/sel.json"
                --csv "${WORK_DIR}/sel.csv"
                RESULT_VARIABLE sel_rc OUTPUT_VARIABLE sel_out ERROR_VARIABLE sel_err)
file(READ "${WORK_DIR}/sel.json" sel)
foreach(op gelu silu softmax swiglu)
  if(NOT sel_rc EQUAL 0 OR NOT sel MATCHES "\"op\": \"${op}\"")
    message(FATAL_ERROR "repeated --op (exit ${sel_rc}) did not give a ${op} row:\n${sel}\n${sel_err}")
  endif()
endforeach()
if(NOT gpu)
  file(READ "${WORK_DIR}/sel.csv" sel_csv)
  foreach(op softmax swiglu)
    if(NOT sel MATCHES "\"op\": \"${op}\", [^\n]*\"status\": \"host_checked\", [^\n]*\"median_ms\": null, [^\n]*\"accuracy\": \"pass\""
       OR NOT sel_csv MATCHES "\n[a-z]+,${op},f32,forward,[^\n]*,host_checked,,,,,,\"\",pass\n")
      message(FATAL_ERROR "without a GPU the ${op} row is not host_checked with a pass:\n${sel}\n${sel_csv}")
    endif()
  endforeach()
  if(NOT sel MATCHES "\"op\": \"gelu\", [^\n]*\"status\": \"not_run\", [^\n]*\"accuracy\": null")
    message(FATAL_ERROR "without a GPU the gelu row is not marked as not run:\n${sel}")
  endif()
endif()
# An output that cannot be written fails at once, before any work: one
# message, nothing on stdout.
execute_process(COMMAND "${BENCH}" --op gelu --dtype f32 --direction forward --size 2^12 --runs 1
                --no-progress --json "${WORK_DIR}/no/such/dir/r.json"
                RESULT_VARIABLE w_rc OUTPUT_VARIABLE w_out ERROR_VARIABLE w_err)
string(REGEX MATCHALL "cannot write" w_count "${w_err}")
list(LENGTH w_count w_n)
if(NOT w_rc EQUAL 2 OR NOT w_n EQUAL 1 OR w_out)
  message(FATAL_ERROR "an unwritable --json: exit ${w_rc}, ${w_n} 'cannot write' lines, "
    "stdout:\n${w_out}\nstderr:\n${w_err}")
endif()
# The per-row accuracy table: no relative error of 0.1 or more on a 0-ulp row
# (fp16 leaky_relu rounds tiny results to 0 correctly: not a 100% error).
execute_process(COMMAND "${BENCH}" --accuracy --verbose --op leaky_relu,elu --no-progress
                RESULT_VARIABLE a_rc OUTPUT_VARIABLE a_out ERROR_VARIABLE a_err)
if(NOT a_rc EQUAL 0 OR NOT a_out MATCHES "\\| leaky_relu \\| f16 \\| forward \\| 0 \\| 0 \\|"
   OR a_out MATCHES "\\| 0 \\| [0-9]+ \\| [1-9]\\.[0-9][0-9]e(\\+|-01)")
  message(FATAL_ERROR "--accuracy --verbose: exit ${a_rc}:\n${a_out}\n${a_err}")
endif()
if(NOT gpu)
  # --verbose adds every row; a missing static table is a note, not an error.
  execute_process(COMMAND "${BENCH}" --op gelu --verbose --static-model "${WORK_DIR}/none.json"
                  RESULT_VARIABLE m_rc OUTPUT_VARIABLE m_out ERROR_VARIABLE m_err)
  if(NOT m_rc EQUAL 0 OR NOT m_out MATCHES "accuracy, every row:\n\\| op \\| dtype"
     OR NOT m_out MATCHES "predicted: not shown \\(cannot read [^\n]*none.json")
    message(FATAL_ERROR "--verbose --static-model <missing>: exit ${m_rc}:\n${m_out}\n${m_err}")
  endif()
  execute_process(COMMAND "${BENCH}" --op swiglu --verbose OUTPUT_VARIABLE s_out)
  if(NOT s_out MATCHES "predicted fraction of copy, every kernel:\n[^\n]*\n[^\n]*\n\\| swiglu \\| f32 \\| forward \\| silu glu \\|")
    message(FATAL_ERROR "--verbose does not list the static model's rows:\n${s_out}")
  endif()
endif()
message(STATUS "cuact-bench ran: ${count} results\n${out}")
