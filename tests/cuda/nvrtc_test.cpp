// NVRTC compilation and its cache: no GPU needed, only the toolkit's NVRTC.
#include "tunekit/cuda/nvrtc.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "temp_dir.hpp"
#include "tunekit/spec.hpp"

namespace {

namespace tc = tunekit::cuda;

const char* const source = R"(
template <int Width>
__global__ void scale(float* out, const float* in, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = FACTOR * in[i] * Width;
}
)";

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

TEST(Nvrtc, CompilesATemplateWithDefinesIntoACubinAndCachesIt) {
  tunekit::test::temp_dir dir;
  const tc::nvrtc_compiler compiler(dir.path() / "cache");
  const tc::nvrtc_request request{.source = source, .name = "scale.cu", .function = "scale<4>",
                                  .architecture = "sm_90", .defines = {{"FACTOR", "2.0f"}}};
  const auto first = compiler.compile(request);
  ASSERT_TRUE(first.ok) << first.log;
  EXPECT_FALSE(first.cached);
  EXPECT_GT(first.milliseconds, 0.0);
  EXPECT_NE(first.lowered_name.find("scale"), std::string::npos);
  EXPECT_NE(first.lowered_name, "scale<4>");  // mangled, as the cubin exports it
  const auto bytes = file_bytes(first.cubin);
  ASSERT_GE(bytes.size(), 4u);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x7f" "ELF"));
  EXPECT_NE(bytes.find(first.lowered_name), std::string::npos);

  const auto again = compiler.compile(request);
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.cached);
  EXPECT_EQ(again.cubin, first.cubin);
  EXPECT_EQ(again.lowered_name, first.lowered_name);

  // Another define, template argument or architecture is another entry.
  auto other = request;
  other.defines = {{"FACTOR", "3.0f"}};
  EXPECT_NE(compiler.compile(other).cubin, first.cubin);
  other = request;
  other.function = "scale<8>";
  EXPECT_NE(compiler.compile(other).cubin, first.cubin);
  other = request;
  other.architecture = "sm_80";
  EXPECT_NE(compiler.compile(other).cubin, first.cubin);
}

TEST(Nvrtc, AChangedIncludedHeaderIsANewCacheEntry) {
  tunekit::test::temp_dir dir;
  const tc::nvrtc_compiler compiler(dir.path() / "cache");
  std::filesystem::create_directories(dir.path() / "src" / "common");
  const auto header = dir.path() / "src" / "common" / "factor.cuh";
  std::ofstream(header) << "#define FACTOR 2.0f\n";
  const tc::nvrtc_request request{.source = "#include \"common/factor.cuh\"\n" + std::string(source),
                                  .name = "scale.cu", .function = "scale<4>", .architecture = "sm_90",
                                  .include_directories = {dir.path() / "src"}};
  const auto first = compiler.compile(request);
  ASSERT_TRUE(first.ok) << first.log;
  EXPECT_TRUE(compiler.compile(request).cached);
  std::ofstream(header) << "#define FACTOR 3.0f\n";
  const auto changed = compiler.compile(request);
  ASSERT_TRUE(changed.ok) << changed.log;
  EXPECT_FALSE(changed.cached);
  EXPECT_NE(changed.cubin, first.cubin);
}

TEST(Nvrtc, ACompileErrorIsAResultWithTheLogAndNothingCached) {
  tunekit::test::temp_dir dir;
  const tc::nvrtc_compiler compiler(dir.path());
  const auto failed = compiler.compile({.source = source, .name = "scale.cu", .function = "scale<4>"});  // no FACTOR
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.log.find("FACTOR"), std::string::npos) << failed.log;
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& each : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 0u);
}

TEST(Nvrtc, AFunctionTheSourceLacksIsAFailureNamingIt) {
  tunekit::test::temp_dir dir;
  const tc::nvrtc_compiler compiler(dir.path());
  const auto failed = compiler.compile({.source = source, .name = "scale.cu", .function = "missing",
                                        .defines = {{"FACTOR", "1.0f"}}});
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.log.find("missing"), std::string::npos) << failed.log;
}

TEST(Nvrtc, VersionNamesNvrtc) { EXPECT_EQ(tc::nvrtc_compiler::version().rfind("NVRTC ", 0), 0u); }

}  // namespace

// Every CUDA spec the repository ships (examples and the workload suite)
// reads cleanly and its baseline variant compiles with NVRTC for sm_90.
namespace {

TEST(ShippedSpecs, EveryCudaSpecLoadsAndItsBaselineCompiles) {
  namespace fs = std::filesystem;
  tunekit::test::temp_dir dir;
  const tc::nvrtc_compiler compiler(dir.path());
  std::size_t checked = 0;
  for (const char* folder : {"examples/cuda", "kernels"}) {
    for (const auto& entry : fs::recursive_directory_iterator(fs::path(TUNEKIT_SOURCE_DIR) / folder)) {
      if (entry.path().extension() != ".toml") continue;
      // The suite's manifest and budget table are not specs.
      if (entry.path().filename() == "suite.toml" || entry.path().filename() == "budgets.toml") continue;
      SCOPED_TRACE(entry.path().string());
      const auto spec = tunekit::load_spec(entry.path());
      if (spec.backend != tunekit::backend_kind::cuda) continue;
      tc::nvrtc_request request;
      request.source = file_bytes(spec.source);
      request.name = spec.source.filename().string();
      request.function = spec.function;
      for (const auto& [name, value] : spec.baseline) {
        request.defines.emplace_back(name, tunekit::to_string(value));
        // A template name expression takes the baseline's values too.
        for (auto at = request.function.find(name); at != std::string::npos; at = request.function.find(name, at + 1)) {
          const bool word_start = at == 0 || !(std::isalnum(static_cast<unsigned char>(request.function[at - 1])) || request.function[at - 1] == '_');
          const std::size_t end = at + name.size();
          const bool word_end = end >= request.function.size() ||
                                !(std::isalnum(static_cast<unsigned char>(request.function[end])) || request.function[end] == '_');
          if (word_start && word_end) request.function.replace(at, name.size(), tunekit::to_string(value));
        }
      }
      request.options = spec.compile_options;
      request.include_directories = {spec.source.parent_path()};
      const auto compiled = compiler.compile(request);
      EXPECT_TRUE(compiled.ok) << compiled.log;
      ++checked;
    }
  }
  EXPECT_GE(checked, 28u);  // the CUDA examples and the suite's 25 specs with launch_overhead
}

}  // namespace
