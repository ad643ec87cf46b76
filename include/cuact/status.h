// cuact status: every entry point returns one; nothing in cuact aborts or prints.
//
//   cuact::Status s = cuact::activation_forward(cuact::Activation::gelu(), x, y, n, stream);
//   if (!s.ok()) std::fprintf(stderr, "cuact: %s\n", s.message().c_str());
//
// A Status is a small value (no allocation); message() builds the text only
// when asked, inline in the caller's code: no std::string crosses the library
// boundary, so a consumer built with another C++ ABI (e.g.
// -D_GLIBCXX_USE_CXX11_ABI=0, as some PyTorch builds are) links and runs.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

namespace cuact {

enum class StatusCode {
  success = 0,
  null_pointer,        // a required pointer is null
  invalid_size,        // a size is negative or too large
  misaligned_pointer,  // a pointer is not aligned to its element type
  overlapping_buffers, // an output partially overlaps an input (exact aliasing is allowed)
  invalid_parameter,   // an activation parameter is NaN or outside its domain
  unsupported,         // a valid request this operation does not offer
  no_device,           // no usable CUDA device or driver
  cuda_error,          // the CUDA runtime reported an error (see cuda_error())
};

// Name of a status code, e.g. "invalid_size".
const char* status_code_name(StatusCode code);

class Status {
 public:
  constexpr Status() = default;
  // `detail` must point to a string with static storage duration.
  constexpr Status(StatusCode code, const char* detail, cudaError_t cuda = cudaSuccess)
      : code_(code), detail_(detail), cuda_error_(cuda) {}

  constexpr bool ok() const { return code_ == StatusCode::success; }
  constexpr StatusCode code() const { return code_; }
  // What was wrong, naming the argument: "x is null", "n is negative".
  constexpr const char* detail() const { return detail_; }
  // The CUDA error behind no_device / cuda_error, cudaSuccess otherwise.
  constexpr cudaError_t cuda_error() const { return cuda_error_; }
  // "<code name>: <detail>[: <CUDA error name>: <CUDA error text>]".
  std::string message() const {
    std::string text = status_code_name(code_);
    text += ": ";
    text += detail_ ? detail_ : "";
    if (cuda_error_ != cudaSuccess) {
      text += ": ";
      text += cudaGetErrorName(cuda_error_);
      text += ": ";
      text += cudaGetErrorString(cuda_error_);
    }
    return text;
  }

 private:
  StatusCode code_ = StatusCode::success;
  const char* detail_ = "success";
  cudaError_t cuda_error_ = cudaSuccess;
};

}  // namespace cuact
