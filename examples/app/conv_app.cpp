// An application that runs the tuned 2D convolution: it asks the results
// store which configuration is best for this GPU and its image size (tuned
// for exactly that size, else the nearest tuned size, else an occupancy-based
// default), compiles that variant with NVRTC, runs it, checks sampled outputs
// against a float64 computation and prints what it chose as one JSON line.
//
//   tunekit tune examples/cuda/conv2d.toml --store tuned.db
//   tunekit_conv_app --store tuned.db --source examples/cuda/conv2d.cu [--width 4096 --height 4096]
//
// Applications that must not read a store at run time use the header that
// `tunekit export-header` writes instead of tunekit::dispatcher.

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/nvrtc.hpp"
#include "tunekit/cuda/occupancy.hpp"
#include "tunekit/dispatch.hpp"

namespace {

constexpr int filter_size = 17;  // the kernel's FILTER_WIDTH and FILTER_HEIGHT

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  std::fprintf(stderr, "conv_app: %s: %s\n", what, cudaGetErrorString(status));
  std::exit(1);
}

struct variant {
  std::map<std::string, std::int64_t> values;
  [[nodiscard]] std::int64_t operator[](const std::string& name) const { return values.at(name); }
  [[nodiscard]] std::uint64_t shared_bytes() const {
    const std::int64_t columns = values.at("block_size_x") * values.at("tile_size_x") + filter_size - 1;
    const std::int64_t stride = values.at("use_padding") != 0 ? columns + (48 - columns % 32) % 32 : columns;
    return static_cast<std::uint64_t>(4 * (values.at("block_size_y") * values.at("tile_size_y") + filter_size - 1) * stride);
  }
};

struct compiled_kernel {
  cudaLibrary_t library = nullptr;
  const void* function = nullptr;
  cudaFuncAttributes attributes{};
};

compiled_kernel compile(const tunekit::cuda::nvrtc_compiler& compiler, const std::string& source,
                        const std::string& architecture, const variant& config) {
  tunekit::cuda::nvrtc_request request;
  request.source = source;
  request.name = "conv2d.cu";
  request.function = "conv2d<" + std::to_string(config["tile_size_x"]) + ", " + std::to_string(config["tile_size_y"]) + ">";
  request.architecture = architecture;
  for (const auto& [name, value] : config.values) request.defines.emplace_back(name, std::to_string(value));
  const auto built = compiler.compile(request);
  if (!built.ok) {
    std::fprintf(stderr, "conv_app: the kernel does not compile: %s\n", built.log.c_str());
    std::exit(1);
  }
  compiled_kernel out;
  check(cudaLibraryLoadFromFile(&out.library, built.cubin.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0),
        "loading the kernel");
  cudaKernel_t kernel = nullptr;
  check(cudaLibraryGetKernel(&kernel, out.library, built.lowered_name.c_str()), "finding the kernel");
  out.function = reinterpret_cast<const void*>(kernel);
  check(cudaFuncGetAttributes(&out.attributes, out.function), "reading the kernel's attributes");
  return out;
}

// The default where nothing is tuned: one output per thread, 32 threads wide,
// and the block height the occupancy model likes best for this kernel.
variant occupancy_default(const tunekit::cuda::nvrtc_compiler& compiler, const std::string& source,
                          const tunekit::cuda::device_properties& device) {
  variant best;
  double best_occupancy = -1.0;
  for (const std::int64_t height : {2, 4, 8, 16, 32}) {
    variant candidate{{{"block_size_x", 32}, {"block_size_y", height}, {"tile_size_x", 1}, {"tile_size_y", 1},
                       {"use_padding", 0}, {"read_only", 1}}};
    const auto probe = compile(compiler, source, device.capability.architecture_name(), candidate);
    const auto occupancy = tunekit::cuda::compute_occupancy(
        device, {.registers_per_thread = probe.attributes.numRegs, .static_shared_bytes = probe.attributes.sharedSizeBytes},
        {.threads_per_block = static_cast<int>(32 * height), .dynamic_shared_bytes = candidate.shared_bytes()});
    cudaLibraryUnload(probe.library);
    if (occupancy.occupancy > best_occupancy + 1e-9) {
      best_occupancy = occupancy.occupancy;
      best = candidate;
    }
  }
  return best;
}

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "conv_app: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string store_path;
  std::string source_path = "examples/cuda/conv2d.cu";
  std::string cache = "/tmp/tunekit_conv_app_cache";
  int width = 4096;
  int height = 4096;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--store") store_path = argv[i + 1];
    else if (option == "--source") source_path = argv[i + 1];
    else if (option == "--cache") cache = argv[i + 1];
    else if (option == "--width") width = std::atoi(argv[i + 1]);
    else if (option == "--height") height = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "conv_app: unknown option %s\n", option.c_str());
      return 2;
    }
  }
  if (width <= 0 || height <= 0) {
    std::fprintf(stderr, "conv_app: --width and --height must be positive\n");
    return 2;
  }
  const std::string source = read_text(source_path);
  const auto device = tunekit::cuda::live_device(0);
  const tunekit::cuda::nvrtc_compiler compiler(cache);

  // The store, read once; no store at all is the same as nothing tuned.
  tunekit::dispatcher tuned;
  if (!store_path.empty()) tuned = tunekit::dispatcher::open(store_path, "conv2d");
  const tunekit::problem_dimensions problem = {{"image_width", width},
                                               {"image_height", height},
                                               {"filter_width", filter_size},
                                               {"filter_height", filter_size}};
  const auto choice = tuned.best(device.name, "conv2d", problem, [&] {
    tunekit::stored_configuration config;
    for (const auto& [name, value] : occupancy_default(compiler, source, device).values) config.emplace_back(name, value);
    return config;
  });
  variant config;
  for (const auto& [name, value] : choice.config) config.values[name] = std::get<std::int64_t>(value);

  // Inputs: a padded image and a filter of uniform randoms.
  const std::size_t padded_width = static_cast<std::size_t>(width) + filter_size - 1;
  const std::size_t padded_height = static_cast<std::size_t>(height) + filter_size - 1;
  std::vector<float> input(padded_width * padded_height);
  std::vector<float> filter(filter_size * filter_size);
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(0.0F, 1.0F);
  for (auto& each : input) each = uniform(random);
  for (auto& each : filter) each = uniform(random);
  std::vector<float> output(static_cast<std::size_t>(width) * height);

  void* device_output = nullptr;
  void* device_input = nullptr;
  void* device_filter = nullptr;
  check(cudaMalloc(&device_output, output.size() * sizeof(float)), "allocating");
  check(cudaMalloc(&device_input, input.size() * sizeof(float)), "allocating");
  check(cudaMalloc(&device_filter, filter.size() * sizeof(float)), "allocating");
  check(cudaMemcpy(device_input, input.data(), input.size() * sizeof(float), cudaMemcpyHostToDevice), "uploading");
  check(cudaMemcpy(device_filter, filter.data(), filter.size() * sizeof(float), cudaMemcpyHostToDevice), "uploading");
  check(cudaMemset(device_output, 0xA5, output.size() * sizeof(float)), "poisoning");

  const auto kernel = compile(compiler, source, device.capability.architecture_name(), config);
  const std::uint64_t shared = config.shared_bytes();
  if (shared > 48U * 1024U)
    check(cudaFuncSetAttribute(kernel.function, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
          "opting in to shared memory");
  const auto blocks = [](std::int64_t extent, std::int64_t per_block) {
    return static_cast<unsigned>((extent + per_block - 1) / per_block);
  };
  const dim3 grid(blocks(width, config["block_size_x"] * config["tile_size_x"]),
                  blocks(height, config["block_size_y"] * config["tile_size_y"]));
  const dim3 block(static_cast<unsigned>(config["block_size_x"]), static_cast<unsigned>(config["block_size_y"]));
  void* arguments[] = {&device_output, &device_input, &device_filter, &width, &height};
  check(cudaLaunchKernel(kernel.function, grid, block, arguments, shared, nullptr), "launching");
  check(cudaDeviceSynchronize(), "running");
  check(cudaMemcpy(output.data(), device_output, output.size() * sizeof(float), cudaMemcpyDeviceToHost), "reading back");

  // 4096 sampled outputs against float64 sums.
  std::size_t wrong = 0;
  for (int sample = 0; sample < 4096; ++sample) {
    const int x = static_cast<int>(random() % static_cast<unsigned>(width));
    const int y = static_cast<int>(random() % static_cast<unsigned>(height));
    double sum = 0.0;
    for (int fy = 0; fy < filter_size; ++fy)
      for (int fx = 0; fx < filter_size; ++fx)
        sum += static_cast<double>(input[(y + fy) * padded_width + x + fx]) * filter[fy * filter_size + fx];
    const double got = output[static_cast<std::size_t>(y) * width + x];
    if (!(std::abs(got - sum) <= 1e-4 + 1e-5 * std::abs(sum))) ++wrong;
  }

  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  check(cudaEventCreate(&start), "events");
  check(cudaEventCreate(&stop), "events");
  constexpr int runs = 20;
  check(cudaEventRecord(start), "timing");
  for (int run = 0; run < runs; ++run)
    check(cudaLaunchKernel(kernel.function, grid, block, arguments, shared, nullptr), "launching");
  check(cudaEventRecord(stop), "timing");
  check(cudaEventSynchronize(stop), "timing");
  float elapsed_ms = 0.0F;
  check(cudaEventElapsedTime(&elapsed_ms, start, stop), "timing");

  nlohmann::ordered_json report;
  report["device"] = device.name;
  report["problem"] = {{"image_width", width}, {"image_height", height}};
  report["choice"] = std::string(tunekit::to_string(choice.from));
  report["tuned_for"] = nlohmann::json::parse(choice.problem);
  report["config"] = config.values;
  report["tuned_time_ms"] = choice.time_ms ? nlohmann::ordered_json(*choice.time_ms) : nlohmann::ordered_json(nullptr);
  report["hot_time_ms"] = elapsed_ms / runs;
  report["sampled_outputs_wrong"] = wrong;
  std::cout << report.dump() << '\n';
  cudaLibraryUnload(kernel.library);
  return wrong == 0 ? 0 : 1;
}
