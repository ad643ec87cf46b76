// Built with -D_GLIBCXX_USE_CXX11_ABI=0 (as some PyTorch builds are): it links
// against the library built with the default ABI because no std::string
// crosses the boundary (Status::message() is inline).
#include <cuact/cuact.h>

#include <cstdio>

int main() {
  const cuact::Status s = cuact::activation_forward(cuact::Activation::relu(),
                                                    static_cast<const float*>(nullptr),
                                                    static_cast<float*>(nullptr), 8);
  const std::string text = s.message();
  if (s.code() != cuact::StatusCode::null_pointer || text.find("null_pointer") != 0) {
    std::printf("old-ABI consumer: unexpected status '%s'\n", text.c_str());
    return 1;
  }
  std::printf("old-ABI consumer: %s\n", text.c_str());
  return 0;
}
