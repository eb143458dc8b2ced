#include "tunekit/cuda/nvrtc.hpp"

#include <nvrtc.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "detail/includes.hpp"
#include "detail/kernel_tuner_files.hpp"
#include "tunekit/error.hpp"
#include "tunekit/store.hpp"

namespace tunekit::cuda {

namespace {

// Written under a private name, then renamed: a concurrent compiler of the
// same variant never reads half a file.
void write_atomically(const std::filesystem::path& path, const std::string& bytes) {
  const auto partial = path.string() + "." + std::to_string(getpid()) + "." +
                       std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + ".tmp";
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!file) throw error("cannot write " + partial);
  }
  std::filesystem::rename(partial, path);
}

// Owns an nvrtcProgram.
struct program {
  nvrtcProgram handle = nullptr;
  ~program() {
    if (handle != nullptr) nvrtcDestroyProgram(&handle);
  }
};

}  // namespace

nvrtc_compiler::nvrtc_compiler(std::filesystem::path cache_directory) : cache_(std::move(cache_directory)) {
  std::filesystem::create_directories(cache_);
}

std::string nvrtc_compiler::version() {
  int major = 0;
  int minor = 0;
  if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) throw error("NVRTC does not answer its version");
  return "NVRTC " + std::to_string(major) + "." + std::to_string(minor);
}

nvrtc_compiler::result nvrtc_compiler::compile(const nvrtc_request& request) const {
  std::vector<std::string> options = {"--gpu-architecture=" + request.architecture, "-std=c++17",
                                      "--extra-device-vectorization"};
  for (const auto& [name, value] : request.defines) options.push_back("-D" + name + "=" + value);
  for (const auto& directory : request.include_directories) options.push_back("-I" + directory.string());
  for (const auto& option : request.options) options.push_back(option);

  std::string key_text = version() + "\n" + request.function;
  for (const auto& option : options) key_text += "\n" + option;
  key_text += tunekit::detail::quoted_include_texts(request.source, request.include_directories);
  const auto key = source_hash(request.source, key_text);
  result out;
  out.cubin = cache_ / (key + ".cubin");
  const auto name_file = cache_ / (key + ".name");
  std::error_code ignored;
  if (std::filesystem::exists(out.cubin, ignored) && std::filesystem::exists(name_file, ignored)) {
    out.ok = true;
    out.cached = true;
    out.lowered_name = tunekit::detail::read_maybe_gzipped(name_file);
    return out;
  }

  const auto started = std::chrono::steady_clock::now();
  program compiled;
  if (nvrtcCreateProgram(&compiled.handle, request.source.c_str(), request.name.c_str(), 0, nullptr, nullptr) !=
      NVRTC_SUCCESS)
    throw error("NVRTC cannot create a program for " + request.name);
  if (nvrtcAddNameExpression(compiled.handle, request.function.c_str()) != NVRTC_SUCCESS)
    throw error("NVRTC refuses the name expression '" + request.function + "'");
  std::vector<const char*> arguments;
  for (const auto& option : options) arguments.push_back(option.c_str());
  const nvrtcResult status = nvrtcCompileProgram(compiled.handle, static_cast<int>(arguments.size()), arguments.data());
  std::size_t log_size = 0;
  nvrtcGetProgramLogSize(compiled.handle, &log_size);
  out.log.resize(log_size);
  if (log_size > 0) nvrtcGetProgramLog(compiled.handle, out.log.data());
  while (!out.log.empty() && (out.log.back() == '\0' || out.log.back() == '\n')) out.log.pop_back();
  out.milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (status != NVRTC_SUCCESS) {
    if (out.log.empty()) out.log = nvrtcGetErrorString(status);
    return out;
  }
  const char* lowered = nullptr;
  if (nvrtcGetLoweredName(compiled.handle, request.function.c_str(), &lowered) != NVRTC_SUCCESS || lowered == nullptr) {
    out.log = request.name + ": no __global__ function '" + request.function + "'";
    return out;
  }
  out.lowered_name = lowered;
  std::size_t cubin_size = 0;
  if (nvrtcGetCUBINSize(compiled.handle, &cubin_size) != NVRTC_SUCCESS || cubin_size == 0) {
    out.log = "NVRTC made no cubin for " + request.architecture;
    return out;
  }
  std::string cubin(cubin_size, '\0');
  nvrtcGetCUBIN(compiled.handle, cubin.data());
  write_atomically(name_file, out.lowered_name);
  write_atomically(out.cubin, cubin);
  out.ok = true;
  return out;
}

}  // namespace tunekit::cuda
