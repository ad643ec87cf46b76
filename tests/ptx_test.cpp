// The generated code of the softmax kernels (PTX for sm_90, built by the
// cuact_kernel_ptx target): every kernel moves data with 128-bit global loads
// and stores where its packs are 16 bytes, uses no local memory, and the
// cluster kernels meet at cluster barriers. (Spills are build errors already:
// ptxas runs with -warn-spills -warn-lmem-usage -Werror. The row engine's
// kernels are checked on their sm_90 machine code by the static model's gate,
// tests/static_model_check.sh.)
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kernel_ptx_files.h"  // CUACT_KERNEL_PTX_FILES, written by CMake
#include "softmax_plan.h"

namespace {

// The PTX files of one kernel family (generated/<family>_<dtype>.cu), one per dtype.
std::vector<std::string> ptx_files(const std::string& family) {
  std::vector<std::string> files;
  std::stringstream list(CUACT_KERNEL_PTX_FILES);
  for (std::string f; std::getline(list, f, ';');)
    if (f.compare(f.find_last_of('/') + 1, family.size() + 1, family + "_") == 0)
      files.push_back(f);
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

// Softmax: the block_per_row and streaming kernels always move 16-byte
// packs; a register kernel variant does where its pack (min(registers per
// lane, 16 bytes)) is 16 bytes. Kernel names carry the dtype and the
// variant: softmax_forward_register_kernel<__half, 10> is
// "softmax_forward_register_kernelI6__halfLi10E...".
// The dtype size and variant of a register kernel from its mangled name;
// false for other kernels.
bool register_variant(const std::string& name, int* elem, int* log2_span) {
  const std::string marker = "register_kernelI";
  size_t p = name.find(marker);
  if (p == std::string::npos) return false;
  p += marker.size();
  for (const auto& [type, size] : {std::pair<std::string, int>{"f", 4}, {"6__half", 2},
                                   {"13__nv_bfloat16", 2}}) {
    if (name.compare(p, type.size() + 2, type + "Li") != 0) continue;
    *elem = size;
    *log2_span = std::stoi(name.substr(p + type.size() + 2));
    return true;
  }
  return false;
}

TEST(GeneratedCode, SoftmaxKernelsUse128BitAccessAndNoLocalMemory) {
  const std::vector<std::string> files = ptx_files("softmax");
  // One file per dtype and output: plain (both directions) and the
  // cross-entropy epilogue (forward, no middle_dim kernel).
  ASSERT_EQ(files.size(), 6u) << "one PTX file per dtype and output expected";
  int registers = 0, block = 0, streaming = 0, cluster = 0, middle = 0, vectorized = 0;
  for (const std::string& file : files) {
    for (const auto& [name, body] : kernels_in(file)) {
      if (name.find("softmax_") == std::string::npos) continue;
      bool wide = true;
      int elem = 0, log2_span = 0;
      if (register_variant(name, &elem, &log2_span)) {
        ++registers;
        const auto cfg = cuact::detail::register_config_for_span(log2_span, elem);
        wide = cfg.pack * elem == 16;
      } else if (name.find("_block_kernel") != std::string::npos) {
        ++block;
      } else if (name.find("_streaming_kernel") != std::string::npos) {
        ++streaming;
      } else if (name.find("_middle_kernel") != std::string::npos) {
        ++middle;
      } else if (name.find("_cluster_kernel") != std::string::npos) {
        ++cluster;
        // The blocks of a cluster meet at cluster barriers and read each
        // other's partial results through distributed shared memory.
        EXPECT_NE(body.find("barrier.cluster.arrive"), std::string::npos) << name;
        EXPECT_NE(body.find("barrier.cluster.wait"), std::string::npos) << name;
        EXPECT_NE(body.find("mapa"), std::string::npos) << name;
      }
      if (wide) {
        ++vectorized;
        EXPECT_TRUE(has_vector_access(body, "ld.global")) << name << " in " << file;
        EXPECT_TRUE(has_vector_access(body, "st.global")) << name << " in " << file;
      }
      EXPECT_EQ(body.find(".local"), std::string::npos) << name << " uses local memory";
    }
  }
  // Per dtype: 15 register variants, 4 block sizes, 1 streaming, 2 cluster
  // and 1 middle_dim kernel; forward and backward, and the cross-entropy's
  // forward (no middle_dim): three directions' worth but middle_dim's.
  EXPECT_EQ(registers, 3 * 3 * cuact::detail::kRegisterConfigs);
  EXPECT_EQ(block, 3 * 3 * cuact::detail::kBlockCandidates);
  EXPECT_EQ(streaming, 3 * 3);
  EXPECT_EQ(cluster, 3 * 3 * 2);  // cached in slices, and in registers
  EXPECT_EQ(middle, 3 * 2);
  // 16-byte packs: every block, streaming, cluster (2) and middle_dim kernel;
  // register variants from 4 (f32) or 8 (f16, bf16) registers per lane:
  // 13 + 12 + 12 per direction (the cross-entropy's dlogits as a forward's y).
  EXPECT_EQ(vectorized, 2 * (3 * (cuact::detail::kBlockCandidates + 4) + 13 + 12 + 12) +
                            3 * (cuact::detail::kBlockCandidates + 3) + 13 + 12 + 12);
}

}  // namespace
