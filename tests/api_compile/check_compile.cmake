# Compiles the public API's usage as a user would (syntax only, the host
# compiler against the installed headers' directory and the CUDA Toolkit's):
# - every ```cpp block of README.md, verbatim, inside a function after the
#   declarations of the names it uses (readme_block_N.h, one per block: a
#   block without one fails the test);
# - calls that must compile (good_calls.cpp) and misuses that must not
#   (misuse_*.cpp: each must fail, with the diagnostic its first line names,
#   "// expect: <text>", so that an unrelated error cannot pass it).
# cmake -DCXX=... -DINCLUDES="a;b" -DREADME=... -DDIR=... -DWORK_DIR=... -P check_compile.cmake
file(MAKE_DIRECTORY ${WORK_DIR})
set(flags -std=c++17 -fsyntax-only)
foreach(i ${INCLUDES})
  list(APPEND flags -I${i})
endforeach()

function(compile source result output)
  execute_process(COMMAND ${CXX} ${flags} ${source} RESULT_VARIABLE r OUTPUT_VARIABLE o
                  ERROR_VARIABLE o)
  set(${result} ${r} PARENT_SCOPE)
  set(${output} "${o}" PARENT_SCOPE)
endfunction()

set(failures 0)

# README blocks.
file(STRINGS ${README} lines)
set(block 0)
set(inside FALSE)
foreach(line IN LISTS lines)
  if(NOT inside AND line MATCHES "^```cpp")
    math(EXPR block "${block} + 1")
    set(inside TRUE)
    set(includes "")
    set(body "")
  elseif(inside AND line MATCHES "^```")
    set(inside FALSE)
    set(decl ${DIR}/readme_block_${block}.h)
    if(NOT EXISTS ${decl})
      message(SEND_ERROR "README block ${block}: no ${decl} declares its names")
      math(EXPR failures "${failures} + 1")
      continue()
    endif()
    set(tu ${WORK_DIR}/readme_block_${block}.cpp)
    file(WRITE ${tu} "${includes}#include \"${decl}\"\nvoid readme_block_${block}() {\n${body}}\n")
    compile(${tu} r o)
    if(NOT r EQUAL 0)
      message(SEND_ERROR "README block ${block} does not compile as printed:\n${o}")
      math(EXPR failures "${failures} + 1")
    else()
      message(STATUS "README block ${block}: compiles")
    endif()
  elseif(inside)
    if(line MATCHES "^#include")
      string(APPEND includes "${line}\n")
    else()
      string(APPEND body "${line}\n")
    endif()
  endif()
endforeach()
if(block EQUAL 0)
  message(SEND_ERROR "no ```cpp block found in ${README}")
  math(EXPR failures "${failures} + 1")
endif()

# Calls that must compile.
compile(${DIR}/good_calls.cpp r o)
if(NOT r EQUAL 0)
  message(SEND_ERROR "good_calls.cpp does not compile:\n${o}")
  math(EXPR failures "${failures} + 1")
endif()

# Misuses that must not.
file(GLOB misuses ${DIR}/misuse_*.cpp)
foreach(m IN LISTS misuses)
  file(STRINGS ${m} first LIMIT_COUNT 1)
  string(REGEX REPLACE "^// expect: " "" expect "${first}")
  compile(${m} r o)
  get_filename_component(name ${m} NAME)
  if(r EQUAL 0)
    message(SEND_ERROR "${name} compiles: the misuse it shows must not")
    math(EXPR failures "${failures} + 1")
  elseif(NOT o MATCHES "${expect}")
    message(SEND_ERROR "${name} fails, but not with \"${expect}\":\n${o}")
    math(EXPR failures "${failures} + 1")
  else()
    message(STATUS "${name}: rejected (${expect})")
  endif()
endforeach()
if(NOT misuses)
  message(SEND_ERROR "no misuse_*.cpp in ${DIR}")
endif()
if(failures GREATER 0)
  message(FATAL_ERROR "${failures} compile checks failed")
endif()
