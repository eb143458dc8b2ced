// Result files: the JSON contract, CSV and Markdown, strict reading with
// one-line errors, and a light fuzz of the reader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "synthetic.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/results.hpp"

namespace {

namespace measure = tunekit::measure;
using nlohmann::json;
using tunekit::testing::lognormal_timer;

measure::result_file example_file() {
  measure::result_file file;
  file.device = R"({"name":"NVIDIA H100","sm":"sm_90"})";
  lognormal_timer timer(12.5, 0.02, 1);
  measure::measurement_result gemm;
  gemm.name = "gemm";
  gemm.params = {{"block_size", "128"}, {"variant", "\"tiled, fast\""}, {"scale", "0.5"}};
  gemm.samples_us = timer.take(40);
  gemm.telemetry = R"({"sm_clock_mhz":[1980,1980]})";
  gemm.throughput = R"({"gflops":51200.5})";
  measure::measurement_result copy;
  copy.name = "copy|kernel";
  copy.samples_us = {3.0, 3.25, 3.5};
  file.results = {gemm, copy};
  for (auto& result : file.results) measure::summarize_result(result);
  return file;
}

std::string to_json_text(const measure::result_file& file) {
  std::ostringstream out;
  measure::write_json(file, out);
  return out.str();
}

// What a reader error looks like: invalid_argument, one line, naming the source.
std::string read_error(const std::string& text, const std::string& source = "bad.json") {
  try {
    (void)measure::parse_result_file(text, source);
  } catch (const tunekit::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.rfind("'" + source + "': ", 0), 0u) << message;
    return message;
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

TEST(ResultFile, JsonHasEveryContractKeyAndEverySample) {
  const auto file = example_file();
  const json document = json::parse(to_json_text(file));
  EXPECT_EQ(document.at("device").at("sm"), "sm_90");
  ASSERT_EQ(document.at("results").size(), 2u);
  const json& gemm = document.at("results")[0];
  EXPECT_EQ(gemm.at("name"), "gemm");
  EXPECT_EQ(gemm.at("params").at("block_size"), 128);
  EXPECT_EQ(gemm.at("params").at("variant"), "tiled, fast");
  EXPECT_EQ(gemm.at("samples_us").size(), 40u);
  for (const char* key : {"median_us", "mean_us", "stddev_us", "cv", "min_us", "max_us", "p99_us"})
    EXPECT_TRUE(gemm.at(key).is_number()) << key;
  EXPECT_DOUBLE_EQ(gemm.at("median_us").get<double>(), file.results[0].statistics.median);
  EXPECT_DOUBLE_EQ(gemm.at("p99_us").get<double>(), file.results[0].statistics.p99);
  EXPECT_EQ(gemm.at("telemetry").at("sm_clock_mhz").size(), 2u);
  EXPECT_EQ(gemm.at("throughput").at("gflops"), 51200.5);
  const json& copy = document.at("results")[1];
  EXPECT_EQ(copy.at("params"), json::object());
  EXPECT_EQ(copy.at("telemetry"), json::object());
  EXPECT_EQ(copy.at("median_us"), 3.25);
}

TEST(ResultFile, RoundTripsExactly) {
  const auto file = example_file();
  const auto read = measure::parse_result_file(to_json_text(file), "round trip");
  EXPECT_EQ(json::parse(read.device), json::parse(file.device));
  ASSERT_EQ(read.results.size(), file.results.size());
  for (std::size_t i = 0; i < file.results.size(); ++i) {
    const auto& before = file.results[i];
    const auto& after = read.results[i];
    EXPECT_EQ(after.name, before.name);
    EXPECT_EQ(after.samples_us, before.samples_us) << "every sample, bit for bit";
    EXPECT_EQ(measure::canonical_params(after), measure::canonical_params(before));
    EXPECT_EQ(after.params.size(), before.params.size());
    EXPECT_EQ(after.statistics.median, before.statistics.median);
    EXPECT_EQ(after.statistics.stddev, before.statistics.stddev);
    EXPECT_EQ(json::parse(after.telemetry), json::parse(before.telemetry));
    EXPECT_EQ(json::parse(after.throughput), json::parse(before.throughput));
  }
  // Params keep their order.
  EXPECT_EQ(read.results[0].params[0].first, "block_size");
  EXPECT_EQ(read.results[0].params[2].first, "scale");
  EXPECT_EQ(to_json_text(read), to_json_text(file)) << "writing what was read changes nothing";
}

TEST(ResultFile, FileOnDiskRoundTripsAndMissingFileIsBadInput) {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("tunekit-results-" + std::to_string(::getpid()) + ".json")).string();
  measure::save_result_file(example_file(), path);
  const auto read = measure::read_result_file(path);
  EXPECT_EQ(read.results.size(), 2u);
  std::filesystem::remove(path);
  try {
    (void)measure::read_result_file(path);
    ADD_FAILURE() << "read a missing file";
  } catch (const tunekit::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos);
  }
}

TEST(ResultFile, ReaderNeedsOnlyNameParamsAndSamples) {
  const auto file = measure::parse_result_file(
      R"({"results":[{"name":"k","params":{"b":2,"a":1.0},"samples_us":[4,2,3,1],"extra":"ignored"}]})", "minimal");
  EXPECT_EQ(file.device, "{}");
  ASSERT_EQ(file.results.size(), 1u);
  const auto& result = file.results[0];
  EXPECT_EQ(result.statistics.count, 4u);
  EXPECT_EQ(result.statistics.median, 2.5);
  EXPECT_EQ(result.statistics.min, 1.0);
  EXPECT_EQ(result.telemetry, "{}");
  EXPECT_EQ(measure::canonical_params(result), R"({"a":1,"b":2})") << "sorted keys, 1.0 written as 1";
  // Statistics in the file are checked as numbers but recomputed from the samples.
  const auto stale = measure::parse_result_file(
      R"({"results":[{"name":"k","params":{},"samples_us":[1,2,3],"median_us":99.0}]})", "stale");
  EXPECT_EQ(stale.results[0].statistics.median, 2.0);
  EXPECT_TRUE(measure::parse_result_file(R"({"results":[]})", "empty").results.empty());
}

TEST(ResultFile, MalformedFilesGiveOneLineNamingWhatIsWrong) {
  EXPECT_NE(read_error("this is not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(read_error("").find("not valid JSON"), std::string::npos);
  EXPECT_NE(read_error("[1, 2]").find("top level"), std::string::npos);
  EXPECT_NE(read_error(R"({"device":{}})").find("missing key \"results\""), std::string::npos);
  EXPECT_NE(read_error(R"({"results":{}})").find("results: expected an array"), std::string::npos);
  EXPECT_NE(read_error(R"({"device":[],"results":[]})").find("device: expected an object"), std::string::npos);
  EXPECT_NE(read_error(R"({"results":[7]})").find("results[0]: expected an object, got number"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"params":{},"samples_us":[1]}]})").find("results[0]: missing key \"name\""),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","samples_us":[1]}]})").find("missing key \"params\""),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{}}]})").find("missing key \"samples_us\""),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":3,"params":{},"samples_us":[1]}]})")
                .find("results[0].name: expected a string, got number"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":[1],"samples_us":[1]}]})")
                .find("results[0].params: expected an object, got array"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":"1,2"}]})")
                .find("results[0].samples_us: expected an array of numbers, got string"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[]}]})")
                .find("results[0].samples_us: no samples"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1,2]},
                                      {"name":"k","params":{},"samples_us":[1,"2"]}]})")
                .find("results[1].samples_us[1]: expected a number, got string"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1,true]}]})")
                .find("samples_us[1]: expected a number, got boolean"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1,null]}]})")
                .find("samples_us[1]: expected a number, got null"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1,-2]}]})").find("positive"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[0]}]})").find("positive"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1],"median_us":"fast"}]})")
                .find("results[0].median_us: expected a number, got string"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1],"cv":null}]})")
                .find("results[0].cv: expected a number"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1],"telemetry":5}]})")
                .find("results[0].telemetry: expected an object"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"results":[{"name":"k","params":{},"samples_us":[1e999]}]})").size(), 0u);
}

TEST(ResultFile, WritersRefuseWhatTheReaderWouldRefuse) {
  auto file = example_file();
  file.results[1].samples_us.clear();
  std::ostringstream sink;
  EXPECT_THROW(measure::write_json(file, sink), tunekit::invalid_argument);
  file = example_file();
  file.results[0].params.emplace_back("broken", "{not json");
  EXPECT_THROW(measure::write_json(file, sink), tunekit::invalid_argument);
  file = example_file();
  file.device = "[1]";
  EXPECT_THROW(measure::write_json(file, sink), tunekit::invalid_argument);
}

TEST(ResultFile, CsvHasOneQuotedRowPerResult) {
  std::ostringstream out;
  measure::write_csv(example_file(), out);
  std::istringstream lines(out.str());
  std::string header, gemm, copy, extra;
  std::getline(lines, header);
  std::getline(lines, gemm);
  std::getline(lines, copy);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_EQ(header, "name,params,count,median_us,mean_us,stddev_us,cv,min_us,max_us,p99_us\r");
  // The params column is JSON: its quotes doubled, the field quoted (it holds commas).
  EXPECT_EQ(gemm.rfind(R"(gemm,"{""block_size"":128,""variant"":""tiled, fast"",""scale"":0.5}",40,)", 0), 0u)
      << gemm;
  EXPECT_EQ(copy, "copy|kernel,{},3,3.25,3.25,0.25,0.07692307692307693,3,3.5,3.495\r");
}

TEST(ResultFile, MarkdownIsATable) {
  std::ostringstream out;
  measure::write_markdown(example_file(), out);
  const std::string text = out.str();
  std::istringstream lines(text);
  std::string line;
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    EXPECT_EQ(line.front(), '|');
    EXPECT_EQ(line.back(), '|');
  }
  EXPECT_EQ(rows, 4);
  EXPECT_NE(text.find("block\\_size=128, variant=tiled, fast, scale=0.5"), std::string::npos) << text;
  EXPECT_NE(text.find("| copy\\|kernel |  | 3 | 3.250 |"), std::string::npos) << text;
}

TEST(ResultFile, CanonicalParamsIgnoreOrderAndIntegralFloats) {
  measure::measurement_result a;
  a.params = {{"x", "1"}, {"y", "\"s\""}, {"z", "[1.0, 2.5]"}};
  measure::measurement_result b;
  b.params = {{"z", "[1, 2.5]"}, {"y", "\"s\""}, {"x", "1.0"}};
  EXPECT_EQ(measure::canonical_params(a), measure::canonical_params(b));
  b.params[1].second = "\"t\"";
  EXPECT_NE(measure::canonical_params(a), measure::canonical_params(b));
  b.params[1].second = "{oops";
  EXPECT_THROW((void)measure::canonical_params(b), tunekit::invalid_argument);
}

TEST(ResultFile, DeepNestingIsRefusedNotAStackOverflow) {
  for (const std::string open : {"[", "{\"a\":"}) {
    std::string text = R"({"results":[{"name":"x","samples_us":[1],"params":{"p":)";
    for (int i = 0; i < 200'000; ++i) text += open;
    text += "1";
    for (int i = 0; i < 200'000; ++i) text += open == "[" ? "]" : "}";
    text += "}}]}";
    EXPECT_NE(read_error(text).find("nested deeper than 64"), std::string::npos);
  }
  // Brackets inside strings do not count.
  const auto file = measure::parse_result_file(
      R"({"results":[{"name":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"[[[",)"
      R"("params":{"nested":[[[1]]]},"samples_us":[1]}]})",
      "strings");
  EXPECT_EQ(measure::canonical_params(file.results[0]), R"({"nested":[[[1]]]})");
  measure::measurement_result built;
  built.params = {{"deep", std::string(100, '[') + std::string(100, ']')}};
  EXPECT_THROW((void)measure::canonical_params(built), tunekit::invalid_argument);
}

// Random mutations of a valid file: the reader either accepts the result or
// throws tunekit::invalid_argument; nothing else escapes and nothing crashes.
TEST(ResultFile, FuzzedFilesParseOrFailCleanly) {
  auto file = example_file();
  file.results[0].samples_us.resize(6);
  const std::string valid = to_json_text(file);
  const std::string alphabet = "{}[]\":,0123456789.eE+-tfnul \\x\x01\xff";
  std::mt19937_64 random(2024);
  auto below = [&random](std::size_t n) { return static_cast<std::size_t>(random() % n); };
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string text = valid;
    const std::size_t edits = 1 + below(4);
    for (std::size_t e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = below(text.size());
      switch (below(5)) {
        case 0: text.erase(at, 1 + below(8)); break;
        case 1: text.insert(at, 1, alphabet[below(alphabet.size())]); break;
        case 2: text[at] = alphabet[below(alphabet.size())]; break;
        case 3: text.insert(at, text.substr(below(text.size()), below(40))); break;
        default: text.resize(at); break;
      }
    }
    try {
      const auto parsed = measure::parse_result_file(text, "fuzz");
      for (const auto& result : parsed.results) {
        ASSERT_FALSE(result.samples_us.empty());
        ASSERT_EQ(result.statistics.count, result.samples_us.size());
        (void)measure::canonical_params(result);
      }
      std::ostringstream sink;
      measure::write_json(parsed, sink);  // whatever was accepted can be written back
      ++accepted;
    } catch (const tunekit::invalid_argument& error) {
      ASSERT_EQ(std::string(error.what()).find('\n'), std::string::npos) << error.what();
      ++rejected;
    }
  }
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
