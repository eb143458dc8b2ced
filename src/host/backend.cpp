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

namespace tunekit::host {

namespace {

using clock = std::chrono::steady_clock;
using json = nlohmann::json;

double milliseconds_since(clock::time_point start) {
  return std::chrono::duration<double, std::milli>(clock::now() - start).count();
}

// Runs argv, returns (exit status, combined output). -1 when it could not start.
std::pair<int, std::string> run_command(const std::vector<std::string>& argv) {
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) return {-1, "cannot create a pipe"};
  const pid_t child = fork();
  if (child < 0) {
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    return {-1, "cannot fork"};
  }
  if (child == 0) {
    dup2(pipe_ends[1], STDOUT_FILENO);
    dup2(pipe_ends[1], STDERR_FILENO);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    std::vector<char*> args;
    for (const auto& each : argv) args.push_back(const_cast<char*>(each.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(pipe_ends[1]);
  std::string output;
  char buffer[4096];
  ssize_t got = 0;
  while ((got = read(pipe_ends[0], buffer, sizeof buffer)) > 0) output.append(buffer, static_cast<std::size_t>(got));
  close(pipe_ends[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output};
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// ---------------------------------------------------------------- arguments

// splitmix64: the same inputs for the reference and every variant.
struct input_stream {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

template <typename T>
void fill_typed(unsigned char* data, std::size_t count, const buffer_init& init) {
  T* out = reinterpret_cast<T*>(data);
  input_stream random{init.seed};
  for (std::size_t i = 0; i < count; ++i) {
    double value = 0.0;
    switch (init.how) {
      case buffer_init::kind::random: value = init.low + (init.high - init.low) * random.uniform(); break;
      case buffer_init::kind::sequence: value = static_cast<double>(i); break;
      case buffer_init::kind::constant: value = init.value; break;
      case buffer_init::kind::file: break;
    }
    if constexpr (std::is_floating_point_v<T>) {
      out[i] = static_cast<T>(value);
    } else {
      out[i] = static_cast<T>(std::floor(value));
    }
  }
}

void fill(unsigned char* data, std::size_t count, element_type type, const buffer_init& init) {
  if (init.how == buffer_init::kind::file) {
    const auto bytes = count * size_of(type);
    std::ifstream file(init.file, std::ios::binary);
    file.read(reinterpret_cast<char*>(data), static_cast<std::streamsize>(bytes));
    if (static_cast<std::size_t>(file.gcount()) != bytes)
      throw spec_error(init.file.string() + ": holds fewer than the " + std::to_string(bytes) + " bytes the buffer needs");
    return;
  }
  switch (type) {
    case element_type::float32: fill_typed<float>(data, count, init); break;
    case element_type::float64: fill_typed<double>(data, count, init); break;
    case element_type::int32: fill_typed<std::int32_t>(data, count, init); break;
    case element_type::int64: fill_typed<std::int64_t>(data, count, init); break;
    case element_type::uint8: fill_typed<std::uint8_t>(data, count, init); break;
  }
}

// The problem size and configuration `index`'s parameter values, by name:
// what every expression of the spec reads.
void name_configuration(variable_table& names, const kernel_spec& spec, const search_space& space, std::size_t index) {
  for (const auto& [name, value] : spec.problem) names.add(name, value);
  const auto configuration = space.at(index);
  for (std::size_t p = 0; p < space.parameters().size(); ++p)
    names.add(space.parameters()[p].name, space.parameters()[p].numeric(configuration.value_indices[p]));
}

// The arguments of one configuration: storage and the pointer array.
struct argument_set {
  std::vector<std::vector<unsigned char>> storage;
  std::vector<void*> pointers;
  std::vector<std::size_t> output_indices;  ///< arguments that are outputs
  std::vector<std::size_t> counts;

  argument_set(const kernel_spec& spec, const search_space& space, std::size_t index) {
    variable_table names;
    name_configuration(names, spec, space, index);
    for (std::size_t a = 0; a < spec.arguments.size(); ++a) {
      const auto& argument = spec.arguments[a];
      if (argument.scalar) {
        const double value = expression(argument.value, names).evaluate();
        std::vector<unsigned char> bytes(size_of(argument.type));
        switch (argument.type) {
          case element_type::float32: { const float v = static_cast<float>(value); std::memcpy(bytes.data(), &v, 4); break; }
          case element_type::float64: std::memcpy(bytes.data(), &value, 8); break;
          case element_type::int32: { const auto v = static_cast<std::int32_t>(value); std::memcpy(bytes.data(), &v, 4); break; }
          case element_type::int64: { const auto v = static_cast<std::int64_t>(value); std::memcpy(bytes.data(), &v, 8); break; }
          case element_type::uint8: bytes[0] = static_cast<unsigned char>(value); break;
        }
        storage.push_back(std::move(bytes));
        counts.push_back(1);
      } else {
        const double count = expression(argument.count, names).evaluate();
        if (!(count >= 0) || !std::isfinite(count)) throw spec_error(spec.path.string() + ":" + std::to_string(argument.line) +
                                                                     ": count of '" + argument.name + "' is not a size");
        const auto elements = static_cast<std::size_t>(count);
        storage.emplace_back(std::max<std::size_t>(1, elements * size_of(argument.type)));
        fill(storage.back().data(), elements, argument.type, argument.init);
        counts.push_back(elements);
        if (argument.direction != argument_direction::in) output_indices.push_back(a);
      }
    }
    for (auto& each : storage) pointers.push_back(each.data());
  }

  // Outputs (not inout: those hold inputs) get a pattern no kernel writes by chance.
  void poison(const kernel_spec& spec) {
    for (const auto a : output_indices)
      if (spec.arguments[a].direction == argument_direction::out) std::memset(storage[a].data(), 0xA5, storage[a].size());
  }
};

template <typename T>
std::string compare_typed(const unsigned char* got_bytes, const unsigned char* want_bytes, std::size_t count,
                          const tolerance& accuracy, bool& not_a_number) {
  const T* got = reinterpret_cast<const T*>(got_bytes);
  const T* want = reinterpret_cast<const T*>(want_bytes);
  for (std::size_t i = 0; i < count; ++i) {
    const double g = static_cast<double>(got[i]);
    const double w = static_cast<double>(want[i]);
    if (std::isnan(g) || std::isinf(g)) {
      not_a_number = true;
      return "element " + std::to_string(i) + " is " + std::to_string(g);
    }
    if (std::abs(g - w) > accuracy.absolute + accuracy.relative * std::abs(w))
      return "element " + std::to_string(i) + " is " + std::to_string(g) + ", the reference " + std::to_string(w);
  }
  return {};
}

std::string compare(element_type type, const unsigned char* got, const unsigned char* want, std::size_t count,
                    const tolerance& accuracy, bool& not_a_number) {
  switch (type) {
    case element_type::float32: return compare_typed<float>(got, want, count, accuracy, not_a_number);
    case element_type::float64: return compare_typed<double>(got, want, count, accuracy, not_a_number);
    case element_type::int32: return compare_typed<std::int32_t>(got, want, count, accuracy, not_a_number);
    case element_type::int64: return compare_typed<std::int64_t>(got, want, count, accuracy, not_a_number);
    case element_type::uint8: return compare_typed<std::uint8_t>(got, want, count, accuracy, not_a_number);
  }
  return {};
}

using kernel_function = void (*)(void* const*);

// Runs `body` in a child process that writes its answer (JSON) to a pipe.
// A child killed by a signal, exiting without an answer, or outliving the
// watchdog becomes an outcome of its own.
struct child_answer {
  enum class ending { answered, crashed, silent, timed_out } how = ending::answered;
  json answer;
  std::string detail;
};

template <typename Body>
child_answer run_in_child(double watchdog_seconds, Body&& body) {
  child_answer result;
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) throw error("cannot create a pipe for a child process");
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) throw error("cannot fork a child process");
  if (child == 0) {
    close(pipe_ends[0]);
    std::string text;
    try {
      text = body().dump();
    } catch (const std::exception& problem) {
      text = json{{"status", "launch_error"}, {"message", problem.what()}}.dump();
    }
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = write(pipe_ends[1], text.data() + written, text.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    close(pipe_ends[1]);
    _exit(0);  // no destructors or atexit handlers of the parent's state
  }
  close(pipe_ends[1]);
  std::string text;
  const auto deadline = clock::now() + std::chrono::duration<double>(watchdog_seconds);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd ready{pipe_ends[0], POLLIN, 0};
    const int polled = poll(&ready, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (polled < 0 && errno != EINTR) break;
    if (polled <= 0) continue;
    char buffer[65536];
    const ssize_t got = read(pipe_ends[0], buffer, sizeof buffer);
    if (got <= 0) break;  // end of file: the child is done or dead
    text.append(buffer, static_cast<std::size_t>(got));
  }
  close(pipe_ends[0]);
  if (timed_out) kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  if (timed_out) {
    result.how = child_answer::ending::timed_out;
    result.detail = "still running after " + std::to_string(watchdog_seconds) + " s";
  } else if (WIFSIGNALED(status)) {
    result.how = child_answer::ending::crashed;
    result.detail = std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  } else if (text.empty()) {
    result.how = child_answer::ending::silent;
    result.detail = "exited with status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + " without an answer";
  } else {
    try {
      result.answer = json::parse(text);
    } catch (const json::exception&) {
      result.how = child_answer::ending::silent;
      result.detail = "answered something that is not JSON";
    }
  }
  return result;
}

}  // namespace

// ---------------------------------------------------------------- compiler

compiler::compiler(std::filesystem::path cache_directory, std::string command)
    : cache_(std::move(cache_directory)), command_(std::move(command)) {
  if (command_.empty()) {
    const char* from_environment = std::getenv("CXX");
    command_ = from_environment != nullptr && *from_environment != '\0' ? from_environment : "c++";
  }
  std::filesystem::create_directories(cache_);
  const auto [status, output] = run_command({command_, "--version"});
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
  const auto [status, output] = run_command(argv);
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

backend::backend(const kernel_spec& spec, const search_space& space, std::filesystem::path cache_directory)
    : spec_(spec), space_(space), compiler_(std::move(cache_directory)) {
  const auto baseline = baseline_index(spec, space);
  auto defines = defines_of(space, baseline);
  const auto compiled = compiler_.compile(spec.reference_source, defines, spec.compile_options);
  if (!compiled.ok)
    throw spec_error(spec.path.string() + ": the reference does not compile: " + first_line(compiled.log));
  // The reference runs in a child too, its outputs returned in shared memory.
  argument_set probe(spec, space, baseline);
  std::size_t shared_bytes = 0;
  for (const auto a : probe.output_indices) shared_bytes += probe.storage[a].size();
  void* shared = mmap(nullptr, std::max<std::size_t>(shared_bytes, 1), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) throw error("cannot map memory for the reference outputs");
  const auto answer = run_in_child(spec.measurement.watchdog_seconds, [&]() -> json {
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
  if (answer.how != child_answer::ending::answered) problem = answer.detail;
  else if (answer.answer.value("status", "") != "ok") problem = answer.answer.value("message", "failed");
  if (!problem.empty()) {
    munmap(shared, std::max<std::size_t>(shared_bytes, 1));
    throw spec_error(spec.path.string() + ": the reference '" + spec.reference_function + "' failed: " + problem);
  }
  const auto* in = static_cast<const unsigned char*>(shared);
  for (const auto a : probe.output_indices) {
    reference_outputs_.emplace_back(in, in + probe.storage[a].size());
    in += probe.storage[a].size();
  }
  munmap(shared, std::max<std::size_t>(shared_bytes, 1));
}

variant_outcome backend::evaluate(std::size_t index) const {
  variant_outcome outcome;
  // Resources first, as the occupancy model does for CUDA: nothing compiled.
  {
    variable_table names;
    name_configuration(names, spec_, space_, index);
    const double threads = expression(spec_.threads, names).evaluate();
    if (threads > thread_limit()) {
      outcome.status = evaluation_status::resources;
      outcome.message = "uses " + std::to_string(static_cast<long long>(threads)) + " threads; the limit here is " +
                        std::to_string(static_cast<long long>(thread_limit()));
      return outcome;
    }
  }
  const auto compiled = compiler_.compile(spec_.source, defines_of(space_, index), spec_.compile_options);
  outcome.compile_ms = compiled.milliseconds;
  if (!compiled.ok) {
    outcome.status = evaluation_status::compile_error;
    outcome.message = first_line(compiled.log);
    return outcome;
  }
  const auto start = clock::now();
  const auto answer = run_in_child(spec_.measurement.watchdog_seconds, [&]() -> json {
    void* library = dlopen(compiled.library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) return {{"status", "launch_error"}, {"message", dlerror()}};
    auto function = reinterpret_cast<kernel_function>(dlsym(library, spec_.function.c_str()));
    if (function == nullptr) return {{"status", "launch_error"}, {"message", "no function '" + spec_.function + "'"}};
    argument_set arguments(spec_, space_, index);
    arguments.poison(spec_);
    const auto verify_start = clock::now();
    function(arguments.pointers.data());
    for (std::size_t o = 0; o < arguments.output_indices.size(); ++o) {
      const auto a = arguments.output_indices[o];
      if (arguments.storage[a].size() != reference_outputs_[o].size())
        return {{"status", "wrong_result"}, {"message", "output '" + spec_.arguments[a].name + "' has another size than the reference's"}};
      bool not_a_number = false;
      const auto mismatch = compare(spec_.arguments[a].type, arguments.storage[a].data(), reference_outputs_[o].data(),
                                    arguments.counts[a], spec_.accuracy, not_a_number);
      if (!mismatch.empty())
        return {{"status", not_a_number ? "invalid_output" : "wrong_result"},
                {"message", "output '" + spec_.arguments[a].name + "': " + mismatch}};
    }
    const double verification_ms = milliseconds_since(verify_start);
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
    case child_answer::ending::timed_out:
      outcome.status = evaluation_status::timeout;
      outcome.message = answer.detail;
      return outcome;
    case child_answer::ending::crashed:
      outcome.status = evaluation_status::device_fault;
      outcome.message = answer.detail;
      return outcome;
    case child_answer::ending::silent:
      outcome.status = evaluation_status::launch_error;
      outcome.message = answer.detail;
      return outcome;
    case child_answer::ending::answered: break;
  }
  const auto status = answer.answer.value("status", std::string("launch_error"));
  for (const auto each : {evaluation_status::ok, evaluation_status::launch_error, evaluation_status::wrong_result,
                          evaluation_status::invalid_output})
    if (status == to_string(each)) outcome.status = each;
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
