# Compiler flags shared by every cuact target.
#
# ptxas: a register spill or any local memory in a kernel is a build error
# (docs/DESIGN.md: "no spills"). Math stays IEEE (no fast-math): the accuracy
# contract depends on it.
set(CUACT_PTXAS_FLAGS "-Xptxas=-warn-spills,-warn-lmem-usage,-Werror")

function(cuact_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
    $<$<COMPILE_LANGUAGE:CUDA>:${CUACT_PTXAS_FLAGS} -Xcompiler=-Wall,-Wextra>)
endfunction()

# CUACT_SANITIZE: AddressSanitizer and UndefinedBehaviorSanitizer on all host
# code (the host side of .cu files too), failing on the first report.
if(CUACT_SANITIZE)
  set(CUACT_SANITIZER_FLAGS -fsanitize=address -fsanitize=undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
  string(REPLACE ";" "," CUACT_SANITIZER_XCOMPILER "${CUACT_SANITIZER_FLAGS}")
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${CUACT_SANITIZER_FLAGS}>"
                      "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${CUACT_SANITIZER_XCOMPILER}>")
  add_link_options(-fsanitize=address,undefined)
endif()

# CUACT_FUZZ: coverage instrumentation for libFuzzer on all C++ code, with
# ASan and UBSan (clang only).
if(CUACT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CUACT_FUZZ needs clang: -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(
    "$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link;-fsanitize=address;-fsanitize=undefined;-fno-sanitize-recover=all>")
  add_link_options(-fsanitize=address -fsanitize=undefined)
endif()
