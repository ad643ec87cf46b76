// cuact-bench's host-side core: option parsing and filtering, the byte
// model, and the JSON/CSV/table writers.
#include <gtest/gtest.h>

#include <algorithm>

#include "bench_core.h"

namespace cuact::bench {
namespace {

Options parse_ok(std::vector<const char*> args) {
  args.insert(args.begin(), "cuact-bench");
  Options o;
  std::string error;
  EXPECT_TRUE(parse_options(static_cast<int>(args.size()), args.data(), o, error)) << error;
  return o;
}

std::string parse_error(std::vector<const char*> args) {
  args.insert(args.begin(), "cuact-bench");
  Options o;
  std::string error;
  EXPECT_FALSE(parse_options(static_cast<int>(args.size()), args.data(), o, error));
  return error;
}

TEST(BenchOptions, ParsesFiltersModesAndFiles) {
  const Options o = parse_ok({"--op", "gelu,silu", "--dtype", "bf16", "--direction", "forward",
                              "--size", "2^27,1M,1000", "--runs", "7", "--json", "r.json",
                              "--csv", "r.csv", "--no-progress"});
  EXPECT_EQ(o.mode, Mode::time);
  EXPECT_EQ(o.ops, (std::vector<std::string>{"gelu", "silu"}));
  EXPECT_EQ(o.dtypes, (std::vector<std::string>{"bf16"}));
  EXPECT_EQ(o.sizes, (std::vector<int64_t>{int64_t{1} << 27, 1 << 20, 1000}));
  EXPECT_EQ(o.runs, 7);
  EXPECT_EQ(o.json_path, "r.json");
  EXPECT_EQ(o.csv_path, "r.csv");
  EXPECT_FALSE(o.progress);
  EXPECT_EQ(parse_ok({"--accuracy"}).mode, Mode::accuracy);
  EXPECT_EQ(parse_ok({"--list"}).mode, Mode::list);
  EXPECT_EQ(parse_ok({"--gallery", "g.csv"}).gallery_path, "g.csv");
}

TEST(BenchOptions, RejectsNonsenseWithAReason) {
  EXPECT_NE(parse_error({"--dtype", "f64"}).find("f64"), std::string::npos);
  EXPECT_NE(parse_error({"--size", "0"}).find("bad size"), std::string::npos);
  EXPECT_NE(parse_error({"--size", "2^x"}).find("bad size"), std::string::npos);
  EXPECT_NE(parse_error({"--runs", "-3"}).find("positive"), std::string::npos);
  EXPECT_NE(parse_error({"--frobnicate"}).find("unknown argument"), std::string::npos);
  EXPECT_NE(parse_error({"--op"}).find("needs a value"), std::string::npos);
  EXPECT_NE(parse_error({"--direction", "sideways"}).find("sideways"), std::string::npos);
  EXPECT_EQ(parse_error({"--help"}), "help");
  EXPECT_NE(usage().find("--accuracy"), std::string::npos);
}

TEST(BenchOptions, RepeatedOptionsAddAndUnknownOperationsAreNamed) {
  const Options o = parse_ok({"--op", "gelu", "--op", "silu,mish", "--dtype", "f32", "--dtype", "bf16",
                              "--direction", "forward", "--direction", "backward", "--size", "1K",
                              "--size", "2^20"});
  EXPECT_EQ(o.ops, (std::vector<std::string>{"gelu", "silu", "mish"}));
  EXPECT_EQ(o.dtypes, (std::vector<std::string>{"f32", "bf16"}));
  EXPECT_EQ(o.directions, (std::vector<std::string>{"forward", "backward"}));
  EXPECT_EQ(o.sizes, (std::vector<int64_t>{1024, 1 << 20}));
  const std::vector<std::string> valid = {"gelu", "silu", "mish", "softmax"};
  EXPECT_EQ(check_op_names(o, valid), "");
  const std::string error = check_op_names(parse_ok({"--op", "gelu,GELU"}), valid);
  EXPECT_NE(error.find("unknown operation 'GELU'"), std::string::npos) << error;
  EXPECT_NE(error.find("gelu, silu, mish, softmax"), std::string::npos) << error;
}

TEST(BenchOptions, CountsParse) {
  EXPECT_EQ(parse_count("2^0"), 1);
  EXPECT_EQ(parse_count("2^28"), int64_t{1} << 28);
  EXPECT_EQ(parse_count("64K"), 65536);
  EXPECT_EQ(parse_count("3G"), int64_t{3} << 30);
  EXPECT_EQ(parse_count("12345"), 12345);
  EXPECT_EQ(parse_count("-5"), -1);
  EXPECT_EQ(parse_count("5X"), -1);
  EXPECT_EQ(parse_count("2^62"), -1);
  EXPECT_EQ(parse_count(""), -1);
}

TEST(BenchSelection, FiltersByOpDtypeDirection) {
  const Options o = parse_ok({"--op", "gelu", "--dtype", "f16"});
  EXPECT_TRUE(selected(o, {"activation", "gelu", "f16", "forward", "", 0}));
  EXPECT_TRUE(selected(o, {"activation", "gelu", "f16", "backward", "", 0}));
  EXPECT_FALSE(selected(o, {"activation", "relu", "f16", "forward", "", 0}));
  EXPECT_FALSE(selected(o, {"activation", "gelu", "f32", "forward", "", 0}));
  EXPECT_TRUE(selected(o, {"copy", "copy", "f16", "1 in", "", 0}));   // the roofline stays
  EXPECT_FALSE(selected(o, {"copy", "copy", "bf16", "1 in", "", 0}));
  EXPECT_TRUE(selected(parse_ok({}), {"activation", "mish", "bf16", "backward", "", 0}));
}

TEST(BenchByteModel, ReadsAndWritesWhatTheOperationMust) {
  EXPECT_EQ(activation_bytes("forward", 1000, 4), 8000);   // read x, write y
  EXPECT_EQ(activation_bytes("backward", 1000, 2), 6000);  // read x and dy, write dx
  EXPECT_EQ(activation_bytes("backward_from_output", 1 << 20, 2), 6 << 20);
  EXPECT_EQ(default_sizes(), (std::vector<int64_t>{1 << 20, 1 << 24, 1 << 27, 1 << 28}));
}

TEST(BenchStatistics, MedianAndPercentiles) {
  std::vector<double> s = {5, 1, 4, 2, 3, 10, 6, 7, 8, 9, 0};
  const Spread sp = spread(s);
  EXPECT_EQ(sp.median, 5);
  EXPECT_EQ(sp.p10, 1);
  EXPECT_EQ(sp.p90, 9);
  std::vector<double> empty;
  EXPECT_EQ(spread(empty).median, 0);
}

Result sample_result() {
  Result r;
  r.key = {"activation", "gelu", "bf16", "forward", "n=1048576 misaligned", 1 << 20};
  r.status = "ok";
  r.bytes = 4 << 20;
  r.median_ms = 0.5;
  r.gbps = 8.4;
  r.copy_fraction = 0.97;
  r.peers = {{"cub", 0.6}, {"cudnn", 1.0}};
  return r;
}

TEST(BenchWriters, JsonHasTheSchema) {
  RunInfo info{"Test \"GPU\"", 3350.0, 30};
  const std::string json = to_json(info, {sample_result()});
  for (const char* field :
       {"\"tool\": \"cuact-bench\"", "\"device\": \"Test \\\"GPU\\\"\"", "\"peak_gbps\": 3350.0",
        "\"runs\": 30", "\"family\": \"activation\"", "\"op\": \"gelu\"", "\"dtype\": \"bf16\"",
        "\"direction\": \"forward\"", "\"shape\": \"n=1048576 misaligned\"",
        "\"elements\": 1048576", "\"bytes\": 4194304", "\"status\": \"ok\"",
        "\"median_ms\": 0.500000", "\"copy_fraction\": 0.9700", "\"cub\": 0.600000",
        "\"cudnn\": 1.000000"})
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
}

TEST(BenchWriters, CsvHasAHeaderAndOneLinePerResult) {
  const std::string csv = to_csv({sample_result(), sample_result()});
  EXPECT_EQ(csv.rfind("family,op,dtype,direction,shape,elements,bytes,status,", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  EXPECT_NE(csv.find("\"cub=0.600000;cudnn=1.000000\""), std::string::npos) << csv;
}

TEST(BenchWriters, TableShowsSpeedUpsAndMarksWrongKernels) {
  Result wrong = sample_result();
  wrong.status = "wrong";
  wrong.note = "outside the accuracy tolerance";
  const std::string table = format_table({sample_result(), wrong});
  EXPECT_NE(table.find("cub 1.20x"), std::string::npos) << table;
  EXPECT_NE(table.find("cudnn 2.00x"), std::string::npos) << table;
  EXPECT_NE(table.find("WRONG: outside"), std::string::npos) << table;
}

TEST(BenchWriters, AccuracyMarkdownTable) {
  AccuracyRow row{"gelu", "f32", "forward", "host functors (no GPU)", 100, 3, 2.5e-7, 0, 7};
  const std::string md = format_accuracy_markdown({row});
  EXPECT_NE(md.find("| gelu | f32 | forward | 3 | 7 | 2.50e-07 | 0 | 100 | host functors (no GPU) |"),
            std::string::npos)
      << md;
  EXPECT_NE(accuracy_to_json({"x", 0, 1}, {row}).find("\"max_ulps\": 3"), std::string::npos);
  AccuracyRow bf16 = row;
  bf16.dtype = "bf16";
  bf16.direction = "backward";
  bf16.max_ulps = 1;
  bf16.bound_ulps = 1;
  const std::string summary = format_accuracy_summary({row, bf16});
  EXPECT_NE(summary.find("| gelu | 3/7 | | | | | | | 1/1 | |"), std::string::npos) << summary;
}

}  // namespace
}  // namespace cuact::bench
