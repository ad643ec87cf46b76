#include "fused_testing.h"

#include <string>
#include <vector>

namespace cuact::test {

std::vector<Activation> fused_activations() { return test_activations(); }

std::vector<Shape> fused_shapes() {
  return {{1, 1}, {1, 7}, {3, 5}, {2, 8}, {4, 33}, {5, 64}, {7, 100}, {17, 31}, {64, 9},
          {3, 1000}, {130, 3}, {1, 4099}};
}

std::string shape_name(const Shape& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

}  // namespace cuact::test
