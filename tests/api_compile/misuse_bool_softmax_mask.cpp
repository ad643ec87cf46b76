// expect: no matching function
// A bool (or byte) keep-mask given to the softmax's additive mask: it must
// not compile (a typed mask is float, __half or __nv_bfloat16; an untyped
// one names its dtype).
#include <cuact/cuact.h>

cuact::Softmax misuse(const bool* keep) { return cuact::Softmax::softmax().with_mask(keep, 4); }
