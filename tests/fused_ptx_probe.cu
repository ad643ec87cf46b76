// Representative instantiations of the fused kernels for the generated-code
// checks of ptx_test.cpp: every form of the row engine (ActivationForwardForm,
// ActivationBackwardForm, GatedBackwardForm with float- and double-returning,
// light and heavy functors; the slope forms) and the partial-sum kernel, in
// every dtype. The engine's memory code does not depend on the functor, so
// these stand for all 24; ptxas already rejects spills and local memory in
// every real kernel of the library build. (Compiling all 222 fused kernels a
// second time for the check would cost more than the rest of the checks.)
#include "fused_reduce.cuh"
#include "fused_table.cuh"

namespace cuact::detail {

#define CUACT_PROBE_FORM(T, FORM) \
  template __global__ void fused_rows_kernel<T, FORM>(FORM, RowArgs<T>, RowPlan, TileGeometry);
#define CUACT_PROBE_FUNCTOR(T, F)                         \
  CUACT_PROBE_FORM(T, ActivationForwardForm<F>)           \
  CUACT_PROBE_FORM(T, ActivationBackwardForm<F>)          \
  CUACT_PROBE_FORM(T, GatedBackwardForm<F>)
#define CUACT_PROBE_DTYPE(T)                                                     \
  CUACT_PROBE_FUNCTOR(T, IdentityOp)                                             \
  CUACT_PROBE_FUNCTOR(T, ReluOp)                                                 \
  CUACT_PROBE_FUNCTOR(T, LeakyReluOp)                                            \
  CUACT_PROBE_FUNCTOR(T, GeluOp)                                                 \
  CUACT_PROBE_FUNCTOR(T, SiluOp)                                                 \
  CUACT_PROBE_FORM(T, SlopeForwardForm)                                          \
  CUACT_PROBE_FORM(T, SlopeBackwardForm)                                         \
  template __global__ void sum_partials_kernel<T>(const float*, ReduceLayout, T*);

CUACT_PROBE_DTYPE(float)
CUACT_PROBE_DTYPE(__half)
CUACT_PROBE_DTYPE(__nv_bfloat16)

}  // namespace cuact::detail
