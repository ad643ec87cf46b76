// cuact-bench's host-side core: option parsing and filtering, the byte
// model, the JSON/CSV/table writers, reading the static model's table, and
// the overview without a GPU (the rows checked on the host included).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>

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
  // An option never takes the next option as its value.
  EXPECT_EQ(parse_error({"--op", "--dtype", "f32"}), "--op needs a value");
  EXPECT_EQ(parse_error({"--json", "--verbose"}), "--json needs a value");
  EXPECT_TRUE(parse_ok({"--verbose", "--static-model", "m.json"}).verbose);
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

// A row not timed (no GPU, or a kernel that failed its check) has no
// timings and no copy fraction: null and empty cells, never a 0.
TEST(BenchWriters, UnmeasuredValuesAreNullNotZero) {
  Result r = sample_result();
  r.status = "not_run";
  r.copy_fraction.reset();
  r.predicted = Prediction{1.0, 0.94};
  const std::string json = to_json({"no GPU/driver found", 0, 0}, {r});
  for (const char* field : {"\"median_ms\": null", "\"gbps\": null", "\"copy_fraction\": null",
                            "\"accuracy\": null",
                            "\"predicted_copy_fraction\": {\"H100\": 1.00, \"H200\": 0.94}"})
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
  EXPECT_NE(to_json({"x", 0, 0}, {sample_result()}).find("\"predicted_copy_fraction\": null"),
            std::string::npos);
  EXPECT_NE(to_csv({r}).find(",not_run,,,,,,"), std::string::npos) << to_csv({r});
  EXPECT_NE(format_table({r}).find("not_run: "), std::string::npos);
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

// static_model.py's rows (one per line), keyed as the bench names its rows.
TEST(BenchStaticModel, ReadsRowsTheBenchTimes) {
  const std::string path = testing::TempDir() + "bench_static_model.json";
  std::ofstream(path)
      << "{\n \"rows\": [\n"
         "  {\"binding_H200\": \"memory\", \"detail\": \"\", \"direction\": \"backward\", "
         "\"dtype\": \"f16\", \"family\": \"elementwise\", \"form\": \"from output\", "
         "\"fraction_H100\": 1.0, \"fraction_H200\": 0.97, \"notes\": [\"a \\\"quoted\\\" note\"], "
         "\"op\": \"sigmoid\"},\n"
         "  {\"binding_H200\": \"issue\", \"direction\": \"forward\", \"dtype\": \"bf16\", "
         "\"family\": \"fused\", \"form\": \"act+dropout+mask\", \"fraction_H100\": 1.0, "
         "\"fraction_H200\": 0.91, \"op\": \"gelu\"},\n"
         "  {\"direction\": \"forward\", \"dtype\": \"bf16\", \"family\": \"fused\", "
         "\"form\": \"bias+act\", \"fraction_H100\": 1.0, \"fraction_H200\": 0.5, \"op\": \"celu\"},\n"
         "  {\"cols\": 256, \"direction\": \"forward\", \"dtype\": \"bf16\", \"family\": \"softmax\", "
         "\"form\": \"\", \"fraction_H100\": 0.9, \"fraction_H200\": 0.8, \"op\": \"warp_per_row\"}\n"
         " ],\n \"softmax_dispatch\": [\n"
         "  {\"binding_H200\": \"issue\", \"cols\": 256, \"direction\": \"forward\", \"dispatch\": true, "
         "\"dtype\": \"bf16\", \"family\": \"softmax\", \"form\": \"\", \"fraction_H100\": 1.0, "
         "\"fraction_H200\": 0.96, \"op\": \"warp_per_row\"}\n ]\n}\n";
  std::vector<StaticRow> rows;
  std::string error;
  ASSERT_TRUE(read_static_model(path, rows, error)) << error;
  std::remove(path.c_str());
  // celu's fused kernel is not a bench row; softmax rows count where the dispatch picks them.
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].key.family, "activation");
  EXPECT_EQ(rows[0].key.op, "sigmoid");
  EXPECT_EQ(rows[0].key.direction, "backward_from_output");
  EXPECT_EQ(rows[0].predicted.h200, 0.97);
  EXPECT_EQ(rows[1].key.op, "gelu+dropout");
  EXPECT_EQ(rows[1].key.shape, "gelu act+dropout+mask");
  EXPECT_EQ(rows[1].binding, "issue");
  EXPECT_EQ(rows[2].key.op, "softmax");
  EXPECT_EQ(rows[2].key.shape, "warp_per_row cols=256");
  const auto low = lowest_prediction(rows, {"", "softmax", "bf16", "", "", 0});
  ASSERT_TRUE(low.has_value());
  EXPECT_EQ(low->h200, 0.96);
  EXPECT_FALSE(lowest_prediction(rows, {"", "softmax", "f32", "", "", 0}).has_value());
  EXPECT_FALSE(read_static_model(path, rows, error));
  EXPECT_NE(error.find("cannot read"), std::string::npos);
}

// The committed table covers every operation the bench times, in every
// dtype and direction it times.
TEST(BenchStaticModel, CommittedTableCoversTheBenchRows) {
  std::vector<StaticRow> rows;
  std::string error;
  ASSERT_TRUE(read_static_model(CUACT_SOURCE_DIR "/bench/results/static/static_model.json", rows,
                                error))
      << error;
  for (const char* op : {"gelu", "softmax", "bias+gelu", "gelu+dropout", "swiglu", "geglu",
                         "moe swiglu", "prelu", "rrelu"})
    for (const char* dtype : {"f32", "f16", "bf16"})
      for (const char* direction : {"forward", "backward"}) {
        const auto p = lowest_prediction(rows, {"", op, dtype, direction, "", 0});
        ASSERT_TRUE(p.has_value()) << op << " " << dtype << " " << direction;
        EXPECT_GT(p->h100, 0);
        EXPECT_LE(p->h200, 1);
      }
  EXPECT_TRUE(lowest_prediction(rows, {"", "sigmoid", "f16", "backward_from_output", "", 0}));
}

// Without a GPU: one line per operation, each dtype's tightest direction.
TEST(BenchOverview, OneLinePerOperation) {
  const std::vector<AccuracyRow> accuracy = {
      {"gelu", "f32", "forward", "host", 10, 3, 1e-7, 0, 7},
      {"gelu", "f32", "backward", "host", 10, 6, 1e-7, 0, 7},
      {"gelu", "f16", "forward", "host", 10, 1, 1e-4, 0, 1},
      {"mish", "bf16", "forward", "host", 10, 2, 1e-2, 4, 1}};
  StaticRow softmax;
  softmax.key = {"softmax", "softmax", "f32", "forward", "", 0};
  softmax.predicted = {1.0, 0.96};
  const std::string text = format_overview({"gelu", "mish", "softmax"}, accuracy, {}, {softmax});
  EXPECT_NE(text.find("gelu            6/7    1/1    -      pass      functors     -\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("mish            -      -      OUT    FAIL      functors     -\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("softmax         -      -      -      -         -            1.00 / 0.96\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("not run without a GPU: softmax\n"), std::string::npos) << text;
  EXPECT_NE(text.find("4 of 40 results outside the contract"), std::string::npos) << text;
  EXPECT_EQ(text.find("kernel code"), std::string::npos) << text;
}

// Softmax and fused rows checked on the host (the kernels' code): their
// verdict and, where the judge reports one, the worst error over the bound;
// a run that throws is a FAIL with its reason, not the end of the run.
TEST(BenchOverview, RowsCheckedOnTheHost) {
  auto row = [](const char* op, const char* dtype, const char* direction, int64_t outside,
                std::optional<double> worst) {
    HostCheck check{{"fused", op, dtype, direction, "8x64", 0}, [=](HostCheckRow& r) {
                      r.results += 100;
                      r.outside += outside;
                      r.worst = worst;
                    }};
    return run_on_host(check);
  };
  const std::vector<HostCheckRow> rows = {
      row("softmax", "f32", "forward", 0, 0.25),
      row("softmax", "f32", "backward", 0, 0.5),
      row("softmax", "bf16", "forward", 0, 0.25),
      row("swiglu", "f32", "forward", 0, {}),
      row("swiglu", "f16", "backward", 3, {}),
      run_on_host({{"fused", "prelu", "f32", "forward", "2x4x16", 0},
                   [](HostCheckRow&) { throw std::logic_error("a plan past the cache"); }})};
  EXPECT_TRUE(rows[3].ok());
  EXPECT_FALSE(rows[4].ok());
  EXPECT_EQ(rows[5].error, "a plan past the cache");
  EXPECT_FALSE(rows[5].ok());
  const std::string text = format_overview({"softmax", "swiglu", "prelu"}, {}, rows, {});
  EXPECT_NE(text.find("softmax         0.50   -      0.25   pass      kernel code  -\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("swiglu          ok     OUT    -      FAIL      kernel code  -\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("prelu           OUT    -      -      FAIL      kernel code  -\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("not a GPU"), std::string::npos) << text;
  EXPECT_NE(text.find("3 of 500 results outside the rule; runs stopped: 1"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("not run without a GPU"), std::string::npos) << text;
  const std::string verbose = format_host_checks(rows);
  EXPECT_NE(verbose.find("| softmax | f32 | backward | 8x64 | 100 | 0 | 0.500 |"),
            std::string::npos)
      << verbose;
  EXPECT_NE(
      verbose.find("| prelu | f32 | forward | 2x4x16 | 0 | stopped: a plan past the cache | - |"),
      std::string::npos)
      << verbose;
  // In the files: status host_checked with the verdict, nothing timed.
  Result r;
  r.key = {"softmax", "softmax", "f32", "forward", "", 0};
  r.status = "host_checked";
  r.accuracy = "pass";
  const std::string json = to_json({"no GPU/driver found", 0, 0}, {r});
  for (const char* field : {"\"status\": \"host_checked\"", "\"accuracy\": \"pass\"",
                            "\"median_ms\": null", "\"gbps\": null", "\"copy_fraction\": null"})
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
  EXPECT_NE(to_csv({r}).find(",host_checked,,,,,,\"\",pass\n"), std::string::npos) << to_csv({r});
}

}  // namespace
}  // namespace cuact::bench
