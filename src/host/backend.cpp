#include "tunekit/host/backend.hpp"

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tunekit/expression.hpp"
#include "tunekit/measure/engine.hpp"
#include "tunekit/measure/host_timer.hpp"
#include "tunekit/measure/statistics.hpp"
#include "tunekit/measure/stopping.hpp"
#include "tunekit/store.hpp"

#include "detail/arguments.hpp"
#include "detail/includes.hpp"
#include "detail/npy.hpp"
#include "detail/process.hpp"

namespace tunekit::host {

namespace {

using clock = std::chrono::steady_clock;
using json = nlohmann::json;
using detail::first_line;
using detail::milliseconds_since;

using kernel_function = void (*)(void* const*);

}  // namespace

// ---------------------------------------------------------------- compiler

compiler::compiler(std::filesystem::path cache_directory, std::string command)
    : cache_(std::move(cache_directory)), command_(std::move(command)) {
  if (command_.empty()) {
    const char* from_environment = std::getenv("CXX");
    command_ = from_environment != nullptr && *from_environment != '\0' ? from_environment : "c++";
  }
  std::filesystem::create_directories(cache_);
  const auto [status, output] = detail::run_command({command_, "--version"});
  if (status != 0) throw error("the host compiler '" + command_ + "' does not run: " + first_line(output));
  version_ = first_line(output);
}

compiler::result compiler::compile(const std::filesystem::path& source,
                                   const std::vector<std::pair<std::string, std::string>>& defines,
                                   const std::vector<std::string>& options) const {
  result out;
  std::ifstream file(source, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  std::vector<std::string> argv = {command_, "-std=c++20", "-O3", "-march=native", "-fPIC", "-shared", "-pthread"};
  for (const auto& [name, value] : defines) argv.push_back("-D" + name + "=" + value);
  for (const auto& option : options) argv.push_back(option);
  std::string key_text = version_;
  for (const auto& each : argv) key_text += "\n" + each;
  key_text += detail::quoted_include_texts(text.str(), {source.parent_path()});
  const auto key = source_hash(text.str(), key_text);
  out.library = cache_ / (key + ".so");
  std::error_code ignored;
  if (std::filesystem::exists(out.library, ignored)) {
    out.ok = true;
    out.cached = true;
    return out;
  }
  // Written under a private name, then renamed: concurrent compilers of the
  // same variant never see half a file.
  const auto partial = cache_ / (key + "." + std::to_string(getpid()) + "." +
                                 std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + ".tmp");
  argv.push_back(source.string());
  argv.push_back("-o");
  argv.push_back(partial.string());
  const auto start = clock::now();
  const auto [status, output] = detail::run_command(argv);
  out.milliseconds = milliseconds_since(start);
  out.log = output;
  if (status != 0) {
    std::filesystem::remove(partial, ignored);
    return out;
  }
  std::filesystem::rename(partial, out.library);
  out.ok = true;
  return out;
}

// ---------------------------------------------------------------- backend

std::vector<std::pair<std::string, std::string>> defines_of(const search_space& space, std::size_t index) {
  std::vector<std::pair<std::string, std::string>> defines;
  const auto configuration = space.at(index);
  for (std::size_t p = 0; p < space.parameters().size(); ++p) {
    const auto& each = space.parameters()[p];
    defines.emplace_back(each.name, to_string(each.values[configuration.value_indices[p]]));
  }
  return defines;
}

double backend::thread_limit() { return 4.0 * std::max(1U, std::thread::hardware_concurrency()); }

std::vector<std::vector<unsigned char>> reference_outputs(const kernel_spec& spec, const search_space& space,
                                                          const compiler& host_compiler) {
  const auto baseline = baseline_index(spec, space);
  // A cuda spec's compile options are NVRTC's: its host reference gets none.
  const auto compiled = host_compiler.compile(spec.reference_source, defines_of(space, baseline),
                                              spec.backend == backend_kind::host ? spec.compile_options
                                                                                 : std::vector<std::string>{});
  if (!compiled.ok)
    throw spec_error(spec.path.string() + ": the reference does not compile: " + first_line(compiled.log));
  // The reference runs in a child too, its outputs returned in shared memory.
  detail::argument_set probe(spec, space, baseline);
  std::size_t shared_bytes = 0;
  for (const auto a : probe.output_indices) shared_bytes += probe.storage[a].size();
  const std::size_t mapped = std::max<std::size_t>(shared_bytes, 1);
  void* shared = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) throw error("cannot map memory for the reference outputs");
  const auto answer = detail::run_in_child(spec.measurement.watchdog_seconds, [&]() -> json {
    void* library = dlopen(compiled.library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) return {{"status", "launch_error"}, {"message", dlerror()}};
    auto function = reinterpret_cast<kernel_function>(dlsym(library, spec.reference_function.c_str()));
    if (function == nullptr) return {{"status", "launch_error"}, {"message", "no function '" + spec.reference_function + "'"}};
    probe.poison(spec);
    function(probe.pointers.data());
    auto* out = static_cast<unsigned char*>(shared);
    for (const auto a : probe.output_indices) {
      std::memcpy(out, probe.storage[a].data(), probe.storage[a].size());
      out += probe.storage[a].size();
    }
    return {{"status", "ok"}};
  });
  std::string problem;
  if (answer.how != detail::child_answer::ending::answered) problem = answer.detail;
  else if (answer.answer.value("status", "") != "ok") problem = answer.answer.value("message", "failed");
  if (!problem.empty()) {
    munmap(shared, mapped);
    throw spec_error(spec.path.string() + ": the reference '" + spec.reference_function + "' failed: " + problem);
  }
  std::vector<std::vector<unsigned char>> outputs;
  const auto* in = static_cast<const unsigned char*>(shared);
  for (const auto a : probe.output_indices) {
    outputs.emplace_back(in, in + probe.storage[a].size());
    in += probe.storage[a].size();
  }
  munmap(shared, mapped);
  return outputs;
}

std::vector<std::filesystem::path> dump_reference(const kernel_spec& spec, const search_space& space, std::size_t index,
                                                  const compiler& host_compiler) {
  const auto outputs = reference_outputs(spec, space, host_compiler);
  detail::argument_set arguments(spec, space, index);
  std::vector<const unsigned char*> buffers;
  for (std::size_t a = 0; a < spec.arguments.size(); ++a) buffers.push_back(arguments.storage[a].data());
  for (std::size_t o = 0; o < arguments.output_indices.size(); ++o)
    buffers[arguments.output_indices[o]] = outputs[o].data();
  return detail::write_arguments_npy(spec.dump_directory, spec, buffers, arguments.counts, outputs);
}

backend::backend(const kernel_spec& spec, const search_space& space, std::filesystem::path cache_directory)
    : spec_(spec), space_(space), compiler_(std::move(cache_directory)),
      reference_outputs_(reference_outputs(spec, space, compiler_)) {}

device_identity backend::identity() const {
  std::string model = "host";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
#if defined(__x86_64__)
  const char* architecture = "host-x86_64";
#elif defined(__aarch64__)
  const char* architecture = "host-aarch64";
#else
  const char* architecture = "host";
#endif
  return {model, architecture, compiler_.version()};
}

compiled_variant backend::compile(std::size_t index) const {
  compiled_variant variant;
  variant.index = index;
  // Resources first, as the occupancy model does for CUDA: nothing compiled.
  variable_table names;
  detail::name_configuration(names, spec_, space_, index);
  const double threads = expression(spec_.threads, names).evaluate();
  if (threads > thread_limit()) {
    variant.status = evaluation_status::resources;
    variant.message = "uses " + std::to_string(static_cast<long long>(threads)) + " threads; the limit here is " +
                      std::to_string(static_cast<long long>(thread_limit()));
    return variant;
  }
  const auto compiled = compiler_.compile(spec_.source, defines_of(space_, index), spec_.compile_options);
  variant.compile_ms = compiled.milliseconds;
  variant.cached = compiled.cached;
  if (!compiled.ok) {
    variant.status = evaluation_status::compile_error;
    variant.message = first_line(compiled.log);
    return variant;
  }
  variant.artifact = compiled.library;
  variant.entry = spec_.function;
  return variant;
}

variant_outcome backend::do_run(std::size_t /*lane*/, const compiled_variant& variant) {
  variant_outcome outcome;
  const auto start = clock::now();
  const auto answer = detail::run_in_child(spec_.measurement.watchdog_seconds, [&]() -> json {
    void* library = dlopen(variant.artifact.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) return {{"status", "launch_error"}, {"message", dlerror()}};
    auto function = reinterpret_cast<kernel_function>(dlsym(library, variant.entry.c_str()));
    if (function == nullptr) return {{"status", "launch_error"}, {"message", "no function '" + variant.entry + "'"}};
    detail::argument_set arguments(spec_, space_, variant.index);
    arguments.poison(spec_);
    const auto verify_start = clock::now();
    function(arguments.pointers.data());
    for (std::size_t o = 0; o < arguments.output_indices.size(); ++o) {
      const auto a = arguments.output_indices[o];
      if (arguments.storage[a].size() != reference_outputs_[o].size())
        return {{"status", "wrong_result"}, {"message", "output '" + spec_.arguments[a].name + "' has another size than the reference's"}};
      bool not_a_number = false;
      const auto mismatch = detail::compare(spec_.arguments[a].type, arguments.storage[a].data(),
                                            reference_outputs_[o].data(), arguments.counts[a], spec_.accuracy,
                                            not_a_number);
      if (!mismatch.empty())
        return {{"status", not_a_number ? "invalid_output" : "wrong_result"},
                {"message", "output '" + spec_.arguments[a].name + "': " + mismatch}};
    }
    const double verification_ms = milliseconds_since(verify_start);
    if (!spec_.dump_directory.empty()) {
      std::vector<const unsigned char*> buffers;
      for (const auto& each : arguments.storage) buffers.push_back(each.data());
      (void)detail::write_arguments_npy(spec_.dump_directory, spec_, buffers, arguments.counts, reference_outputs_);
    }
    measure::host_timer timer([&] { function(arguments.pointers.data()); });
    measure::relative_noise criterion({.min_samples = 5,
                                       .min_seconds = spec_.measurement.min_seconds,
                                       .max_noise = spec_.measurement.max_noise,
                                       .timeout_seconds = spec_.measurement.timeout_seconds});
    const auto timing = measure::measure(timer, criterion, nullptr, {.warmup_seconds = 0.01});
    return {{"status", "ok"}, {"samples_us", timing.samples_us}, {"verification_ms", verification_ms}};
  });
  outcome.benchmark_ms = milliseconds_since(start);
  switch (answer.how) {
    case detail::child_answer::ending::timed_out:
      outcome.status = evaluation_status::timeout;
      outcome.message = answer.detail;
      return outcome;
    case detail::child_answer::ending::crashed:
      outcome.status = evaluation_status::device_fault;
      outcome.message = answer.detail;
      return outcome;
    case detail::child_answer::ending::silent:
      outcome.status = evaluation_status::launch_error;
      outcome.message = answer.detail;
      return outcome;
    case detail::child_answer::ending::answered: break;
  }
  outcome.status = parse_evaluation_status(answer.answer.value("status", std::string()))
                       .value_or(evaluation_status::launch_error);
  outcome.message = answer.answer.value("message", std::string());
  if (outcome.status == evaluation_status::ok) {
    outcome.samples_us = answer.answer["samples_us"].get<std::vector<double>>();
    outcome.verification_ms = answer.answer.value("verification_ms", 0.0);
    outcome.benchmark_ms = std::max(0.0, outcome.benchmark_ms - outcome.verification_ms);
    outcome.median_us = measure::percentile(outcome.samples_us, 50.0);
  }
  return outcome;
}

}  // namespace tunekit::host
