// Calls through the public headers that must compile: the typed and
// dtype-tagged forms of the calls whose misuses misuse_*.cpp show.
#include <cuda_bf16.h>

#include <cuact/cuact.h>
#include <cuact/reference.h>

void good_calls(const __nv_bfloat16* x, const __nv_bfloat16* bias, const __nv_bfloat16* dy,
                __nv_bfloat16* dx, __nv_bfloat16* dbias, void* ws, size_t ws_bytes,
                cudaStream_t stream) {
  const cuact::Dropout drop{0.1f, 1, 2};
  cuact::bias_activation_backward(cuact::Activation::gelu(), x, bias, dy, dx, dbias, 4, 8, drop,
                                  {ws, ws_bytes}, stream);
  cuact::bias_activation_backward(cuact::Activation::gelu(), x, bias, dy, dx, nullptr, 4, 8, drop,
                                  {}, stream);
  cuact::prelu_backward(x, bias, dy, dx, dbias, 2, 8, 3, {ws, ws_bytes}, stream);
  cuact::prelu_backward(x, bias, dy, dx, nullptr, 2, 8, 3, {}, stream);
}

// The softmax mask: typed, or untyped with its dtype; cleared by without_mask.
cuact::Softmax good_masks(const __nv_bfloat16* typed, const void* untyped) {
  const cuact::Softmax a = cuact::Softmax::softmax().with_mask(typed, 4);
  const cuact::Softmax b = a.with_mask(untyped, cuact::DType::bf16, 4, 1, 64);
  return b.without_mask();
}

// The CPU reference takes the device API's typed arguments, minus the stream
// and the workspace.
void good_reference_calls(const __nv_bfloat16* x, const __nv_bfloat16* dy, __nv_bfloat16* y,
                          __nv_bfloat16* dx, __nv_bfloat16* db, int64_t n) {
  const cuact::Activation gelu = cuact::Activation::gelu();
  cuact::reference::activation_forward(gelu, x, y, n);
  cuact::reference::activation_backward(gelu, x, dy, dx, n);
  cuact::reference::activation_backward_from_output(cuact::Activation::sigmoid(), y, dy, dx, n);
  cuact::reference::softmax_forward(cuact::Softmax::softmax(), x, y, 4, n / 4);
  cuact::reference::softmax_backward(cuact::Softmax::softmax(), y, dy, dx,
                                     cuact::SoftmaxShape::rows(4, n / 4));
  cuact::reference::bias_activation_forward(gelu, x, nullptr, y, 4, n / 4);
  cuact::reference::bias_activation_backward(gelu, x, x, dy, dx, db, 4, n / 4);
  cuact::reference::glu_forward(cuact::Glu::swiglu(), x, y, 4, n / 8);
  cuact::reference::glu_backward(cuact::Glu::swiglu(), x, dy, dx, 4, n / 8);
  cuact::reference::prelu_forward(x, x, y, 1, 4, n / 4);
  cuact::reference::prelu_backward(x, x, dy, dx, nullptr, 1, 4, n / 4);
  cuact::reference::rrelu_forward(cuact::Rrelu{}, x, y, n);
  cuact::reference::rrelu_backward(cuact::Rrelu{}, x, dy, dx, n);
}

// Typed forms of every fused entry point, workspace queries included.
void good_typed_fused(const __half* x, const __half* dy, __half* y, __half* dx, uint8_t* mask,
                      int64_t n, cudaStream_t stream) {
  const cuact::Dropout drop{0.1f, 1, 2};
  size_t bytes = 0;
  cuact::bias_activation_backward_workspace_size<__half>(4, n / 4, &bytes);
  cuact::prelu_backward_workspace_size<__half>(1, 4, n / 4, &bytes);
  cuact::activation_dropout_forward(cuact::Activation::gelu(), x, y, n, drop, mask, stream);
  cuact::activation_dropout_backward(cuact::Activation::gelu(), x, dy, dx, n, drop, stream);
}
