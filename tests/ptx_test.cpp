// The generated code of the elementwise kernels (PTX for sm_90, built by the
// cuact_kernel_ptx target): every kernel moves data with 128-bit global loads
// and stores and uses no local memory. (Spills are build errors already:
// ptxas runs with -warn-spills -warn-lmem-usage -Werror.)
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_ptx_files.h"  // CUACT_KERNEL_PTX_FILES, written by CMake

namespace {

std::vector<std::string> ptx_files() {
  std::vector<std::string> files;
  std::stringstream list(CUACT_KERNEL_PTX_FILES);
  for (std::string f; std::getline(list, f, ';');)
    if (!f.empty()) files.push_back(f);
  return files;
}

// Kernel name -> its PTX body, for every .entry in the file.
std::map<std::string, std::string> kernels_in(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string ptx = text.str();
  std::map<std::string, std::string> kernels;
  size_t pos = ptx.find(".entry ");
  while (pos != std::string::npos) {
    const size_t name_start = pos + 7;
    const size_t name_end = ptx.find('(', name_start);
    const size_t next = ptx.find(".entry ", name_end);
    kernels[ptx.substr(name_start, name_end - name_start)] =
        ptx.substr(name_end, next == std::string::npos ? std::string::npos : next - name_end);
    pos = next;
  }
  return kernels;
}

bool has_vector_access(const std::string& body, const char* op) {
  // ld.global.v4.u32 / ld.global.nc.v4.f32 / st.global.v4.b32 ...
  for (size_t p = body.find(op); p != std::string::npos; p = body.find(op, p + 1)) {
    const size_t line_end = body.find_first_of(" \t", p);
    if (body.substr(p, line_end - p).find(".v4.") != std::string::npos ||
        body.substr(p, line_end - p).find(".v2.u64") != std::string::npos ||
        body.substr(p, line_end - p).find(".v2.b64") != std::string::npos)
      return true;
  }
  return false;
}

TEST(GeneratedCode, ElementwiseKernelsUse128BitAccessAndNoLocalMemory) {
  const std::vector<std::string> files = ptx_files();
  ASSERT_EQ(files.size(), 3u) << "one PTX file per dtype expected";
  int checked = 0;
  for (const std::string& file : files) {
    const auto kernels = kernels_in(file);
    ASSERT_FALSE(kernels.empty()) << file;
    for (const auto& [name, body] : kernels) {
      if (name.find("elementwise_kernel") == std::string::npos) continue;
      ++checked;
      EXPECT_TRUE(has_vector_access(body, "ld.global")) << name << " in " << file;
      EXPECT_TRUE(has_vector_access(body, "st.global")) << name << " in " << file;
      EXPECT_EQ(body.find(".local"), std::string::npos) << name << " uses local memory";
    }
  }
  // Per dtype: forward and backward for 24 kinds, backward-from-output for 7.
  EXPECT_EQ(checked, 3 * (24 + 24 + 7));
}

}  // namespace
