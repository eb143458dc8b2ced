#include "tunekit/cuda/backend.hpp"

#include <cuda_runtime_api.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "detail/arguments.hpp"
#include "detail/kernel_tuner_files.hpp"
#include "detail/npy.hpp"
#include "detail/process.hpp"
#include "tunekit/cuda/ceilings.hpp"
#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/nvrtc.hpp"
#include "tunekit/cuda/occupancy.hpp"
#include "tunekit/cuda/telemetry.hpp"
#include "tunekit/cuda/timer.hpp"
#include "tunekit/expression.hpp"
#include "tunekit/host/backend.hpp"
#include "tunekit/measure/engine.hpp"
#include "tunekit/measure/statistics.hpp"
#include "tunekit/measure/stopping.hpp"

namespace tunekit::cuda {

namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- frames
// A message is a 4-byte length and that many bytes of JSON.

bool write_all(int fd, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = send(fd, bytes, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool send_frame(int fd, const json& message) {
  const std::string text = message.dump();
  const auto size = static_cast<std::uint32_t>(text.size());
  return write_all(fd, &size, sizeof size) && write_all(fd, text.data(), text.size());
}

enum class received { frame, closed, timed_out };

// Reads exactly `size` bytes before `deadline` (none: wait for ever).
received read_exactly(int fd, char* data, std::size_t size, std::optional<clock::time_point> deadline) {
  while (size > 0) {
    int wait_ms = -1;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock::now()).count();
      if (left <= 0) return received::timed_out;
      wait_ms = static_cast<int>(std::min<long long>(left, 1000));
    }
    pollfd ready{fd, POLLIN, 0};
    const int polled = poll(&ready, 1, wait_ms);
    if (polled < 0 && errno != EINTR) return received::closed;
    if (polled <= 0) continue;
    const ssize_t n = recv(fd, data, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return received::closed;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return received::frame;
}

received receive_frame(int fd, json& message, std::optional<clock::time_point> deadline = std::nullopt) {
  std::uint32_t size = 0;
  if (const auto got = read_exactly(fd, reinterpret_cast<char*>(&size), sizeof size, deadline); got != received::frame)
    return got;
  std::string text(size, '\0');
  if (const auto got = read_exactly(fd, text.data(), size, deadline); got != received::frame) return got;
  try {
    message = json::parse(text);
  } catch (const json::exception&) {
    return received::closed;
  }
  return received::frame;
}

// A descriptor and a pid over a Unix socket (SCM_RIGHTS).
bool send_descriptor(int socket_fd, int descriptor, int pid) {
  msghdr header{};
  iovec payload{&pid, sizeof pid};
  header.msg_iov = &payload;
  header.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  header.msg_control = control;
  header.msg_controllen = sizeof control;
  cmsghdr* message = CMSG_FIRSTHDR(&header);
  message->cmsg_level = SOL_SOCKET;
  message->cmsg_type = SCM_RIGHTS;
  message->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(message), &descriptor, sizeof(int));
  return sendmsg(socket_fd, &header, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof pid);
}

int receive_descriptor(int socket_fd, int& pid) {
  msghdr header{};
  iovec payload{&pid, sizeof pid};
  header.msg_iov = &payload;
  header.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  header.msg_control = control;
  header.msg_controllen = sizeof control;
  ssize_t got = 0;
  do {
    got = recvmsg(socket_fd, &header, 0);
  } while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(sizeof pid)) return -1;
  const cmsghdr* message = CMSG_FIRSTHDR(&header);
  if (message == nullptr || message->cmsg_type != SCM_RIGHTS) return -1;
  int descriptor = -1;
  std::memcpy(&descriptor, CMSG_DATA(message), sizeof(int));
  return descriptor;
}

// ---------------------------------------------------------------- zygote
// One per process, forked on first use, before this process compiles with
// NVRTC (which opens the driver: a child forked after that cannot create a
// CUDA context) or runs its pipeline's threads. It forks the workers on
// request, each from its own clean, single-threaded state; a worker learns
// what to do from the request (the spec's path, the reference's file).

class zygote {
 public:
  using worker_body = std::function<void(const json& request, int socket)>;

  explicit zygote(worker_body body) {
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) throw error("cannot create the worker socket");
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw error("cannot fork the worker launcher");
    if (pid_ == 0) {
      close(ends[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      signal(SIGCHLD, SIG_IGN);  // workers are reaped by the kernel
      serve(ends[1], body);
      _exit(0);
    }
    close(ends[1]);
    control_ = ends[0];
  }

  ~zygote() {
    close(control_);  // the launcher sees the end and exits
    int status = 0;
    waitpid(pid_, &status, 0);
  }

  zygote(const zygote&) = delete;
  zygote& operator=(const zygote&) = delete;

  struct worker {
    int pid = -1;
    int socket = -1;
  };

  /// A new worker for `request`. Thread-safe.
  worker spawn(const json& request) {
    const std::lock_guard lock(mutex_);
    if (!send_frame(control_, request)) throw error("the worker launcher is gone");
    worker made;
    made.socket = receive_descriptor(control_, made.pid);
    if (made.socket < 0) throw error("the worker launcher did not start a worker");
    return made;
  }

 private:
  static void serve(int control, const worker_body& body) {
    for (;;) {
      json request;
      if (receive_frame(control, request) != received::frame) return;
      int ends[2];
      if (socketpair(AF_UNIX, SOCK_STREAM, 0, ends) != 0) return;
      const pid_t child = fork();
      if (child == 0) {
        close(control);
        close(ends[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGCHLD, SIG_DFL);
        body(request, ends[1]);
        _exit(0);
      }
      close(ends[1]);
      const bool sent = child > 0 && send_descriptor(control, ends[0], child);
      close(ends[0]);
      if (!sent) return;
    }
  }

  pid_t pid_ = -1;
  int control_ = -1;
  std::mutex mutex_;
};

// ---------------------------------------------------------------- geometry

struct geometry {
  std::uint64_t grid[3] = {1, 1, 1};
  std::uint64_t block[3] = {1, 1, 1};
  std::uint64_t shared_bytes = 0;
  [[nodiscard]] std::uint64_t threads() const { return block[0] * block[1] * block[2]; }
};

// Launch geometry of configuration `index`; a value that is not a positive
// whole number is reported as `problem`.
geometry geometry_of(const kernel_spec& spec, const search_space& space, std::size_t index, std::string& problem) {
  variable_table names;
  tunekit::detail::name_configuration(names, spec, space, index);
  geometry shape;
  const auto dims = [&](const std::vector<std::string>& texts, std::uint64_t* out, const char* what) {
    for (std::size_t d = 0; d < texts.size() && d < 3; ++d) {
      const double value = expression(texts[d], names).evaluate();
      if (!(value >= 1.0) || !std::isfinite(value) || value > 4.0e9) {
        if (problem.empty()) problem = std::string(what) + "[" + std::to_string(d) + "] = " + std::to_string(value);
        out[d] = 1;
      } else {
        out[d] = static_cast<std::uint64_t>(value);
      }
    }
  };
  dims(spec.grid, shape.grid, "grid");
  dims(spec.block, shape.block, "block");
  const double shared = expression(spec.shared_memory, names).evaluate();
  if (!(shared >= 0.0) || !std::isfinite(shared)) {
    if (problem.empty()) problem = "shared_memory = " + std::to_string(shared);
  } else {
    shape.shared_bytes = static_cast<std::uint64_t>(shared);
  }
  return shape;
}

// The function's name expression with the configuration's values in place of
// parameter names: "conv2d<TX, TY>" -> "conv2d<16, 4>".
std::string name_expression(const std::string& function, const search_space& space, std::size_t index) {
  const auto open = function.find('<');
  if (open == std::string::npos) return function;
  const auto configuration = space.at(index);
  std::string out = function.substr(0, open);
  for (std::size_t i = open; i < function.size();) {
    if (std::isalpha(static_cast<unsigned char>(function[i])) != 0 || function[i] == '_') {
      std::size_t end = i;
      while (end < function.size() && (std::isalnum(static_cast<unsigned char>(function[end])) != 0 || function[end] == '_'))
        ++end;
      const std::string word = function.substr(i, end - i);
      bool replaced = false;
      for (std::size_t p = 0; p < space.parameters().size(); ++p) {
        if (space.parameters()[p].name == word) {
          out += tunekit::to_string(space.parameters()[p].values[configuration.value_indices[p]]);
          replaced = true;
          break;
        }
      }
      if (!replaced) out += word;
      i = end;
    } else {
      out += function[i++];
    }
  }
  return out;
}

// The first line of a compiler log that says "error", else its first line.
std::string error_line(const std::string& log) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (line.find("error") != std::string::npos) return line;
  return tunekit::detail::first_line(log);
}

// ---------------------------------------------------------------- worker

// An error after which the context is unusable: the worker must end.
bool context_is_broken() {
  (void)cudaGetLastError();
  return cudaDeviceSynchronize() != cudaSuccess;
}

std::string cuda_text(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

// A failure inside the worker, typed.
struct variant_failure {
  evaluation_status status;
  std::string message;
};

// The worker's side: one GPU, one context, variants one after another.
class worker_process {
 public:
  worker_process(const kernel_spec& spec, const search_space& space,
                 const std::vector<std::vector<unsigned char>>& reference, int device, int socket)
      : spec_(spec), space_(space), reference_(reference), device_(device), socket_(socket) {}

  void serve() {
    json hello;
    try {
      const cudaError_t status = cudaSetDevice(device_);
      if (status != cudaSuccess) throw error("GPU " + std::to_string(device_) + ": " + cuda_text(status));
      if (const cudaError_t started = cudaFree(nullptr); started != cudaSuccess)
        throw error("GPU " + std::to_string(device_) + ": " + cuda_text(started));
      properties_ = live_device(device_);
      const auto identity = live_identity(device_);
      hello = {{"name", identity.name},
               {"architecture", identity.architecture},
               {"driver", identity.driver},
               {"max_threads_per_block", properties_.max_threads_per_block},
               {"shared_memory_per_block_optin", properties_.shared_memory_per_block_optin}};
      telemetry_ = open_nvml_telemetry(device_);
      stream_ = shared_timing_stream(device_);
    } catch (const std::exception& problem) {
      send_frame(socket_, json{{"error", problem.what()}});
      return;
    }
    if (!send_frame(socket_, hello)) return;
    for (;;) {
      json request;
      if (receive_frame(socket_, request) != received::frame) return;
      json answer;
      bool fatal = false;
      try {
        answer = run(request.at("index").get<std::size_t>(), request.at("cubin").get<std::string>(),
                     request.at("entry").get<std::string>());
      } catch (const variant_failure& failure) {
        answer = {{"status", std::string(to_string(failure.status))}, {"message", failure.message}};
        fatal = failure.status == evaluation_status::device_fault;
      } catch (const std::exception& problem) {
        fatal = context_is_broken();
        answer = {{"status", fatal ? "device_fault" : "launch_error"}, {"message", problem.what()}};
      }
      unload();
      answer["detail"] = detail_;
      answer["fatal"] = fatal;
      if (!send_frame(socket_, answer) || fatal) return;
    }
  }

 private:
  // A CUDA error of the variant: sticky ones end the worker.
  void check(cudaError_t status, const char* what, evaluation_status otherwise = evaluation_status::launch_error) {
    if (status == cudaSuccess) return;
    if (context_is_broken()) throw variant_failure{evaluation_status::device_fault, std::string(what) + ": " + cuda_text(status)};
    if (status == cudaErrorLaunchOutOfResources) otherwise = evaluation_status::resources;
    throw variant_failure{otherwise, std::string(what) + ": " + cuda_text(status)};
  }

  void unload() {
    if (library_ != nullptr) cudaLibraryUnload(library_);
    library_ = nullptr;
  }

  json run(std::size_t index, const std::string& cubin, const std::string& entry) {
    detail_ = json::object();
    std::string problem;
    const geometry shape = geometry_of(spec_, space_, index, problem);
    if (!problem.empty()) throw variant_failure{evaluation_status::launch_error, "launch geometry: " + problem};

    check(cudaLibraryLoadFromFile(&library_, cubin.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0), "loading the cubin");
    cudaKernel_t kernel = nullptr;
    check(cudaLibraryGetKernel(&kernel, library_, entry.c_str()), "finding the kernel");
    const void* function = reinterpret_cast<const void*>(kernel);

    // Resources, from the function as loaded, against the occupancy model.
    cudaFuncAttributes attributes{};
    check(cudaFuncGetAttributes(&attributes, function), "reading the kernel's attributes");
    const auto threads = shape.threads();
    json resources = {{"registers", attributes.numRegs},
                      {"static_shared_bytes", attributes.sharedSizeBytes},
                      {"local_bytes", attributes.localSizeBytes},
                      {"dynamic_shared_bytes", shape.shared_bytes},
                      {"threads_per_block", threads},
                      {"max_threads_per_block", attributes.maxThreadsPerBlock}};
    detail_["resources"] = resources;
    if (threads > static_cast<std::uint64_t>(attributes.maxThreadsPerBlock))
      throw variant_failure{evaluation_status::resources,
                            std::to_string(threads) + " threads per block; with " + std::to_string(attributes.numRegs) +
                                " registers per thread at most " + std::to_string(attributes.maxThreadsPerBlock)};
    if (attributes.sharedSizeBytes + shape.shared_bytes > properties_.shared_memory_per_block_optin)
      throw variant_failure{evaluation_status::resources,
                            std::to_string(attributes.sharedSizeBytes + shape.shared_bytes) +
                                " bytes of shared memory per block; the GPU allows " +
                                std::to_string(properties_.shared_memory_per_block_optin)};
    const auto occupancy = compute_occupancy(
        properties_, {.registers_per_thread = attributes.numRegs, .static_shared_bytes = attributes.sharedSizeBytes},
        {.threads_per_block = static_cast<int>(threads), .dynamic_shared_bytes = shape.shared_bytes});
    detail_["occupancy"] = {{"blocks_per_sm", occupancy.active_blocks_per_multiprocessor},
                            {"occupancy", occupancy.occupancy},
                            {"limiter", std::string(to_string(occupancy.limiter))}};
    if (occupancy.active_blocks_per_multiprocessor == 0)
      throw variant_failure{evaluation_status::resources,
                            "no block fits on an SM (" + std::string(to_string(occupancy.limiter)) + ")"};
    if (shape.shared_bytes > 48U * 1024U)
      check(cudaFuncSetAttribute(function, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(shape.shared_bytes)),
            "opting in to dynamic shared memory", evaluation_status::resources);

    // Inputs up, outputs poisoned, one run, outputs checked. The host
    // arguments are made once per distinct set of sizes and scalars: the
    // inputs are the same for every variant, and re-uploaded for each, so
    // that a variant writing into an input spoils nothing after it.
    const auto verify_start = clock::now();
    host_arguments(index);
    const auto& host = *host_;
    prepare_buffers(host);
    std::vector<void*> parameters;
    for (std::size_t a = 0; a < spec_.arguments.size(); ++a) {
      const auto& argument = spec_.arguments[a];
      parameters.push_back(argument.scalar || argument.by_value ? host.pointers[a]
                                                                : static_cast<void*>(&device_buffers_[a]));
      // The launch copies as many bytes as the kernel's parameter has from
      // the host elements: they must be exactly that many.
      if (!argument.by_value) continue;
      std::size_t offset = 0;
      std::size_t size = 0;
      check(cudaFuncGetParamInfo(function, a, &offset, &size), "reading the kernel's parameters");
      const auto given = host.counts[a] * size_of(argument.type);
      if (size != given)
        throw variant_failure{evaluation_status::launch_error,
                              "argument '" + argument.name + "' (pass = value): the kernel's parameter " +
                                  std::to_string(a) + " has " + std::to_string(size) + " bytes, the spec gives " +
                                  std::to_string(given)};
    }
    for (std::size_t a = 0; a < spec_.arguments.size(); ++a) {
      if (spec_.arguments[a].scalar || spec_.arguments[a].by_value) continue;
      if (spec_.arguments[a].direction == argument_direction::out)
        check(cudaMemsetAsync(device_buffers_[a], tunekit::detail::poison_byte, host.storage[a].size(), stream_),
              "poisoning an output");
      else
        check(cudaMemcpyAsync(device_buffers_[a], host.storage[a].data(), host.storage[a].size(), cudaMemcpyHostToDevice, stream_),
              "uploading an input");
    }
    const dim3 grid(static_cast<unsigned>(shape.grid[0]), static_cast<unsigned>(shape.grid[1]),
                    static_cast<unsigned>(shape.grid[2]));
    const dim3 block(static_cast<unsigned>(shape.block[0]), static_cast<unsigned>(shape.block[1]),
                     static_cast<unsigned>(shape.block[2]));
    const auto launch = [&](stream_handle stream) {
      const cudaError_t status = cudaLaunchKernel(function, grid, block, parameters.data(), shape.shared_bytes, stream);
      check(status, "launching the kernel");
    };
    launch(stream_);
    check(cudaStreamSynchronize(stream_), "running the kernel");
    for (std::size_t o = 0; o < host.output_indices.size(); ++o) {
      const auto a = host.output_indices[o];
      auto& got = read_back_[a];
      got.resize(host.storage[a].size());
      check(cudaMemcpy(got.data(), device_buffers_[a], got.size(), cudaMemcpyDeviceToHost), "reading an output");
      if (got.size() != reference_[o].size())
        throw variant_failure{evaluation_status::wrong_result,
                              "output '" + spec_.arguments[a].name + "' has another size than the reference's"};
      bool not_a_number = false;
      const auto mismatch = tunekit::detail::compare(spec_.arguments[a].type, got.data(), reference_[o].data(),
                                            host.counts[a], spec_.accuracy, not_a_number);
      if (!mismatch.empty())
        throw variant_failure{not_a_number ? evaluation_status::invalid_output : evaluation_status::wrong_result,
                              "output '" + spec_.arguments[a].name + "': " + mismatch};
    }
    const double verification_ms = tunekit::detail::milliseconds_since(verify_start);
    if (!spec_.dump_directory.empty()) {
      std::vector<const unsigned char*> buffers;
      for (std::size_t a = 0; a < spec_.arguments.size(); ++a)
        buffers.push_back(read_back_[a].empty() ? host.storage[a].data() : read_back_[a].data());
      (void)tunekit::detail::write_arguments_npy(spec_.dump_directory, spec_, buffers, host.counts, reference_);
    }
    if (!send_frame(socket_, json{{"phase", "verified"}})) throw error("the tuner is gone");

    // Timed: cold (L2 flushed before each run), the engine's noise criterion.
    const auto benchmark_start = clock::now();
    event_timer timer(launch, {.device = device_, .mode = timing_mode::cold, .stream = stream_});
    measure::relative_noise criterion({.min_samples = 10,
                                       .min_seconds = spec_.measurement.min_seconds,
                                       .max_noise = spec_.measurement.max_noise,
                                       .timeout_seconds = spec_.measurement.timeout_seconds});
    const auto timing = measure::measure(timer, criterion, telemetry_.source.get(), {.warmup_seconds = 0.01});
    check(cudaStreamSynchronize(stream_), "timing the kernel");
    detail_["telemetry"] = json::parse(measure::telemetry_json(timing.telemetry, timing.samples_us.size()));
    detail_["stop_reason"] = timing.stop_reason;
    return {{"status", "ok"},
            {"samples_us", timing.samples_us},
            {"verification_ms", verification_ms},
            {"benchmark_ms", tunekit::detail::milliseconds_since(benchmark_start)}};
  }

  // The host arguments of configuration `index`, made again only when a
  // size or a scalar differs from the last configuration's.
  void host_arguments(std::size_t index) {
    variable_table names;
    tunekit::detail::name_configuration(names, spec_, space_, index);
    std::vector<double> signature;
    for (const auto& argument : spec_.arguments)
      signature.push_back(expression(argument.scalar ? argument.value : argument.count, names).evaluate());
    if (host_ && signature == host_signature_) return;
    host_.reset();
    host_.emplace(spec_, space_, index);
    host_signature_ = std::move(signature);
    read_back_.assign(spec_.arguments.size(), {});
  }

  // Device buffers sized for this configuration; kept while sizes stay.
  void prepare_buffers(const tunekit::detail::argument_set& host) {
    device_buffers_.resize(spec_.arguments.size(), nullptr);
    buffer_bytes_.resize(spec_.arguments.size(), 0);
    for (std::size_t a = 0; a < spec_.arguments.size(); ++a) {
      if (spec_.arguments[a].scalar || spec_.arguments[a].by_value || buffer_bytes_[a] == host.storage[a].size()) continue;
      if (device_buffers_[a] != nullptr) check(cudaFree(device_buffers_[a]), "freeing a buffer");
      device_buffers_[a] = nullptr;
      check(cudaMalloc(&device_buffers_[a], host.storage[a].size()), "allocating a buffer", evaluation_status::resources);
      buffer_bytes_[a] = host.storage[a].size();
    }
  }

  const kernel_spec& spec_;
  const search_space& space_;
  const std::vector<std::vector<unsigned char>>& reference_;
  int device_;
  int socket_;
  device_properties properties_;
  nvml_telemetry telemetry_;
  stream_handle stream_ = nullptr;
  cudaLibrary_t library_ = nullptr;
  std::optional<tunekit::detail::argument_set> host_;
  std::vector<double> host_signature_;
  std::vector<std::vector<unsigned char>> read_back_;  ///< outputs as the variant left them
  std::vector<void*> device_buffers_;
  std::vector<std::size_t> buffer_bytes_;
  json detail_ = json::object();
};

// The seed of each argument's inputs, in the spec's order.
std::vector<std::uint64_t> seeds_of(const kernel_spec& spec) {
  std::vector<std::uint64_t> seeds;
  for (const auto& argument : spec.arguments) seeds.push_back(argument.init.seed);
  return seeds;
}

// What a worker does, from its request: count the GPUs, or serve variants of
// the spec at "spec" (its measurement settings as "measurement"; the problem,
// "seeds" and "dump" folder as the tuner set them) on GPU "device", checked
// against the reference outputs in the file "reference".
void worker_entry(const json& request, int socket) {
  if (request.value("op", "") == "count") {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
    send_frame(socket, json{{"count", count}});
    return;
  }
  try {
    auto spec = load_spec(request.at("spec").get<std::string>());
    const auto& measurement = request.at("measurement");
    spec.measurement.min_seconds = measurement.at("min_seconds").get<double>();
    spec.measurement.max_noise = measurement.at("max_noise").get<double>();
    spec.measurement.timeout_seconds = measurement.at("timeout_seconds").get<double>();
    spec.measurement.watchdog_seconds = measurement.at("watchdog_seconds").get<double>();
    // What the tuner changed after reading the file: the problem size, the inputs' seeds, the dump folder.
    spec.problem = request.at("problem").get<std::vector<std::pair<std::string, double>>>();
    const auto seeds = request.at("seeds").get<std::vector<std::uint64_t>>();
    for (std::size_t a = 0; a < spec.arguments.size() && a < seeds.size(); ++a) spec.arguments[a].init.seed = seeds[a];
    spec.dump_directory = request.at("dump").get<std::string>();
    const auto space = search_space::enumerate(space_of(spec));
    std::vector<std::vector<unsigned char>> reference;
    std::ifstream file(request.at("reference").get<std::string>(), std::ios::binary);
    std::uint64_t size = 0;
    while (file.read(reinterpret_cast<char*>(&size), sizeof size)) {
      reference.emplace_back(size);
      file.read(reinterpret_cast<char*>(reference.back().data()), static_cast<std::streamsize>(size));
    }
    worker_process(spec, space, reference, request.at("device").get<int>(), socket).serve();
  } catch (const std::exception& problem) {
    send_frame(socket, json{{"error", problem.what()}});
  }
}

zygote& launcher() {
  static zygote instance(worker_entry);
  return instance;
}

// ---------------------------------------------------------------- backend

class backend final : public variant_backend {
 public:
  backend(const kernel_spec& spec, const search_space& space, const std::filesystem::path& cache,
          const std::vector<int>& devices)
      : spec_(spec),
        space_(space),
        host_compiler_(cache / "host"),
        reference_(host::reference_outputs(spec, space, host_compiler_)),
        nvrtc_(cache / "nvrtc"),
        source_text_(tunekit::detail::read_maybe_gzipped(spec.source)) {
    if (devices.empty()) throw error("no GPU to tune on");
    if (spec.path.empty() || !std::filesystem::is_regular_file(spec.path))
      throw spec_error("a cuda spec must be a file: its workers read it");
    // The workers read the reference from a file, as many times as they restart.
    static std::atomic<int> made{0};
    std::filesystem::create_directories(cache / "reference");
    reference_file_ = cache / "reference" / (std::to_string(getpid()) + "-" + std::to_string(made++) + ".bin");
    std::ofstream file(reference_file_, std::ios::binary | std::ios::trunc);
    for (const auto& output : reference_) {
      const std::uint64_t size = output.size();
      file.write(reinterpret_cast<const char*>(&size), sizeof size);
      file.write(reinterpret_cast<const char*>(output.data()), static_cast<std::streamsize>(size));
    }
    file.close();
    if (!file) throw error("cannot write " + reference_file_.string());
    for (const int device : devices) lanes_.push_back({device});
    for (std::size_t lane = 0; lane < lanes_.size(); ++lane) {
      const json hello = start_worker(lane);
      const device_identity found{hello.at("name").get<std::string>(), hello.at("architecture").get<std::string>(),
                                  hello.at("driver").get<std::string>()};
      if (lane == 0) {
        identity_ = found;
        max_threads_ = hello.at("max_threads_per_block").get<std::uint64_t>();
        max_shared_ = hello.at("shared_memory_per_block_optin").get<std::uint64_t>();
      } else if (found.name != identity_.name || found.architecture != identity_.architecture) {
        throw error("GPU " + std::to_string(lanes_[lane].device) + " is a " + found.name + ", GPU " +
                    std::to_string(lanes_[0].device) + " a " + identity_.name + ": one model per session");
      }
    }
  }

  ~backend() override {
    for (auto& lane : lanes_) stop_worker(lane);
    std::error_code ignored;
    std::filesystem::remove(reference_file_, ignored);
  }

  backend(const backend&) = delete;
  backend& operator=(const backend&) = delete;

  [[nodiscard]] device_identity identity() const override { return identity_; }
  [[nodiscard]] std::string compiler_version() const override { return nvrtc_compiler::version(); }
  [[nodiscard]] std::size_t lanes() const override { return lanes_.size(); }
  [[nodiscard]] std::string lane_name(std::size_t lane) const override {
    return "GPU " + std::to_string(lanes_.at(lane).device);
  }

  [[nodiscard]] compiled_variant compile(std::size_t index) const override {
    compiled_variant variant;
    variant.index = index;
    // What the device's limits forbid is rejected before compiling.
    std::string problem;
    const geometry shape = geometry_of(spec_, space_, index, problem);
    if (problem.empty() && shape.threads() > max_threads_) {
      variant.status = evaluation_status::resources;
      variant.message = std::to_string(shape.threads()) + " threads per block; the GPU allows " + std::to_string(max_threads_);
      return variant;
    }
    if (problem.empty() && shape.shared_bytes > max_shared_) {
      variant.status = evaluation_status::resources;
      variant.message = std::to_string(shape.shared_bytes) + " bytes of dynamic shared memory; the GPU allows " +
                        std::to_string(max_shared_);
      return variant;
    }
    const auto compiled = nvrtc_.compile({.source = source_text_,
                                          .name = spec_.source.filename().string(),
                                          .function = name_expression(spec_.function, space_, index),
                                          .architecture = identity_.architecture,
                                          .defines = host::defines_of(space_, index),
                                          .options = spec_.compile_options,
                                          .include_directories = {spec_.source.parent_path()}});
    variant.compile_ms = compiled.milliseconds;
    variant.cached = compiled.cached;
    if (!compiled.ok) {
      variant.status = evaluation_status::compile_error;
      variant.message = error_line(compiled.log);
      return variant;
    }
    variant.artifact = compiled.cubin;
    variant.entry = compiled.lowered_name;
    return variant;
  }

 private:
  [[nodiscard]] variant_outcome do_run(std::size_t lane_index, const compiled_variant& variant) override {
    variant_outcome outcome;
    auto& lane = lanes_.at(lane_index);
    if (lane.socket < 0) start_worker(lane_index);
    const auto start = clock::now();
    const auto ended = [&](evaluation_status status, std::string message) {
      stop_worker(lane);
      outcome.status = status;
      outcome.message = std::move(message);
      outcome.benchmark_ms = tunekit::detail::milliseconds_since(start);
      return outcome;
    };
    if (!send_frame(lane.socket,
                    json{{"index", variant.index}, {"cubin", variant.artifact.string()}, {"entry", variant.entry}}))
      return ended(evaluation_status::device_fault, "the worker process is gone");
    // The watchdog: the first run and its check, then the measurement.
    const auto watchdog = std::chrono::duration<double>(spec_.measurement.watchdog_seconds);
    auto deadline = clock::now() + std::chrono::duration_cast<clock::duration>(watchdog);
    json answer;
    for (;;) {
      const auto got = receive_frame(lane.socket, answer, deadline);
      if (got == received::timed_out)
        return ended(evaluation_status::timeout,
                     "still running after the " + std::to_string(spec_.measurement.watchdog_seconds) +
                         " s watchdog; the worker was killed");
      if (got == received::closed) return ended(evaluation_status::device_fault, "the worker process died");
      if (!answer.contains("phase")) break;
      const auto measuring = std::chrono::duration<double>(spec_.measurement.timeout_seconds * 1.5 + 1.0) + watchdog;
      deadline = clock::now() + std::chrono::duration_cast<clock::duration>(measuring);
    }
    outcome.benchmark_ms = tunekit::detail::milliseconds_since(start);
    outcome.status =
        parse_evaluation_status(answer.value("status", std::string())).value_or(evaluation_status::launch_error);
    outcome.message = answer.value("message", std::string());
    json detail = answer.value("detail", json::object());
    detail["lane"] = lane_name(lane_index);
    detail["worker_restarts"] = lane.restarts;
    outcome.detail = detail.dump();
    if (answer.value("fatal", false)) stop_worker(lane);
    if (outcome.status == evaluation_status::ok) {
      outcome.samples_us = answer.at("samples_us").get<std::vector<double>>();
      outcome.verification_ms = answer.value("verification_ms", 0.0);
      outcome.benchmark_ms = answer.value("benchmark_ms", outcome.benchmark_ms);
      outcome.median_us = measure::percentile(outcome.samples_us, 50.0);
    }
    return outcome;
  }

 private:
  struct lane_state {
    int device = 0;
    int pid = -1;
    int socket = -1;
    int restarts = -1;  ///< workers started after the first
  };

  json start_worker(std::size_t lane_index) {
    auto& lane = lanes_.at(lane_index);
    const auto& measurement = spec_.measurement;
    const auto made = launcher().spawn(json{{"op", "work"},
                                            {"spec", std::filesystem::absolute(spec_.path).string()},
                                            {"measurement", {{"min_seconds", measurement.min_seconds},
                                                             {"max_noise", measurement.max_noise},
                                                             {"timeout_seconds", measurement.timeout_seconds},
                                                             {"watchdog_seconds", measurement.watchdog_seconds}}},
                                            {"reference", std::filesystem::absolute(reference_file_).string()},
                                            {"problem", spec_.problem},
                                            {"seeds", seeds_of(spec_)},
                                            {"dump", spec_.dump_directory.empty() ? std::string()
                                                                                  : std::filesystem::absolute(spec_.dump_directory).string()},
                                            {"device", lane.device}});
    lane.pid = made.pid;
    lane.socket = made.socket;
    ++lane.restarts;
    json hello;
    // A context takes a while; a GPU that does not answer in a minute is gone.
    const auto got = receive_frame(lane.socket, hello, clock::now() + std::chrono::seconds(60));
    if (got != received::frame) {
      stop_worker(lane);
      throw error("the worker for GPU " + std::to_string(lane.device) + " did not start");
    }
    if (hello.contains("error")) {
      stop_worker(lane);
      throw error(hello.at("error").get<std::string>());
    }
    return hello;
  }

  static void stop_worker(lane_state& lane) {
    if (lane.socket >= 0) close(lane.socket);
    if (lane.pid > 0) kill(lane.pid, SIGKILL);
    lane.socket = -1;
    lane.pid = -1;
  }

  const kernel_spec& spec_;
  const search_space& space_;
  host::compiler host_compiler_;
  std::vector<std::vector<unsigned char>> reference_;
  nvrtc_compiler nvrtc_;
  std::string source_text_;
  std::filesystem::path reference_file_;
  std::vector<lane_state> lanes_;
  device_identity identity_;
  std::uint64_t max_threads_ = 1024;
  std::uint64_t max_shared_ = 0;
};

}  // namespace

std::unique_ptr<variant_backend> make_backend(const kernel_spec& spec, const search_space& space,
                                              const std::filesystem::path& cache_directory,
                                              const std::vector<int>& devices) {
  if (spec.backend != backend_kind::cuda) throw spec_error(spec.path.string() + ": not a cuda spec");
  return std::make_unique<backend>(spec, space, cache_directory, devices);
}

int count_devices_without_context() {
  const auto made = launcher().spawn(json{{"op", "count"}});
  json answer;
  const auto got = receive_frame(made.socket, answer, clock::now() + std::chrono::seconds(30));
  close(made.socket);
  kill(made.pid, SIGKILL);
  return got == received::frame ? answer.value("count", 0) : 0;
}

void start_worker_launcher() { (void)launcher(); }

}  // namespace tunekit::cuda
