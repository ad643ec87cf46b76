# Compiler flags shared by every cuact target.
#
# ptxas: a register spill or any local memory in a kernel is a build error
# (DESIGN.md: "no spills"). Math stays IEEE (no fast-math): the accuracy
# contract depends on it.
set(CUACT_PTXAS_FLAGS "-Xptxas=-warn-spills,-warn-lmem-usage,-Werror")

function(cuact_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
    $<$<COMPILE_LANGUAGE:CUDA>:${CUACT_PTXAS_FLAGS} -Xcompiler=-Wall,-Wextra>)
endfunction()
