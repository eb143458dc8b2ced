#pragma once
// Tuning specs: what a user hands `tunekit tune`, read from TOML or built in
// C++. A spec names the kernel source and function, the tunable parameters
// and constraints, the problem size, the arguments (buffers and scalars), the
// reference the outputs are checked against, the objective and a baseline.
// Plain C++.
//
//   [kernel]
//   name = "matmul"
//   backend = "host"                  # host | cuda
//   source = "matmul.cpp"             # relative to the spec file
//   function = "matmul"
//   [parameters]
//   TILE = [8, 16, 32]
//   THREADS = [1, 2, 4]
//   [search]
//   constraints = ["TILE <= n"]
//   baseline = { TILE = 8, THREADS = 1 }
//   [problem]
//   n = 256
//   [[arguments]]
//   name = "a"
//   type = "float32"
//   count = "n * n"
//   # pass = "value" (cuda, inputs): the kernel takes the elements as one struct, not a pointer
//   init = { random = { seed = 1, low = -1.0, high = 1.0 } }   # optional step = 0.0078125:
//   [[arguments]]                     #   values rounded to multiples of it
//   name = "n"
//   scalar = "int32"
//   value = "n"
//   [reference]
//   function = "matmul_reference"
//   tolerance = { absolute = 1e-4, relative = 1e-4 }
//   [model]                           # what a run must do: throughput, % of ceilings
//   bytes_read = "8 * n * n"
//   bytes_written = "4 * n * n"
//   flops = "2 * n^3"
//   [objective]                       # default: the time
//   name = "GFLOP/s"
//   metric = "2 * n^3 / (time_us * 1e3)"
//   goal = "max"                      # or kind = "energy" (joules per run, cuda)
//
//   auto spec = tunekit::load_spec("examples/host/matmul.toml");
//   auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tunekit/error.hpp"
#include "tunekit/measure/throughput.hpp"
#include "tunekit/search_space.hpp"

namespace tunekit {

/// A spec that cannot be used: the message names the file and line,
/// "matmul.toml:12: unknown key 'tile_size' in [parameters]...".
class spec_error : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

enum class backend_kind { host, cuda };

enum class element_type { float32, float64, int32, int64, uint8 };

/// "float32", ...
[[nodiscard]] std::string_view to_string(element_type type);
[[nodiscard]] std::size_t size_of(element_type type);
[[nodiscard]] bool is_floating(element_type type);

enum class argument_direction { in, out, inout };

/// How a buffer starts: uniform random numbers from a seed, the sequence
/// 0, 1, 2, ..., one constant, or the raw contents of a file.
/// How a buffer's elements are made. Besides random, sequence, constant and
/// file: `blobs = { seed = 1, scale = 32.0, width = "width" }`, smooth value
/// noise in [0, 255] over rows of `width` (an expression) elements: random
/// lattice values every `scale` elements, interpolated with a smoothstep,
/// plus a quarter-weight octave at scale / 4 -- an image whose thresholded
/// foreground is blobs of about `scale` across.
struct buffer_init {
  enum class kind { random, sequence, constant, file, blobs };
  kind how = kind::random;
  std::uint64_t seed = 1;
  double low = 0.0;
  double high = 1.0;
  double step = 0.0;  ///< random: when > 0, each value is rounded to a multiple of it
  double value = 0.0;
  double scale = 32.0;     ///< blobs
  std::string width = "";  ///< blobs: the row length, an expression
  std::filesystem::path file;
};

struct argument_spec {
  std::string name;
  bool scalar = false;
  element_type type = element_type::float32;
  std::string count;  ///< buffers: element count, an expression of the problem size and parameters
  buffer_init init;
  argument_direction direction = argument_direction::in;
  /// Buffers of cuda kernels, `pass = "value"`: the kernel takes the elements
  /// themselves as one parameter (a struct of `count` of them, e.g. a filter's
  /// weights), held in the constant bank, not a pointer to device memory. Only
  /// for inputs; the kernel's parameter must have exactly their size.
  bool by_value = false;
  std::string value;  ///< scalars: an expression of the problem size and parameters
  int line = 0;       ///< where the spec declares it
};

struct tolerance {
  double absolute = 1e-6;
  double relative = 1e-5;
};

/// How each variant is timed.
struct measure_settings {
  double min_seconds = 0.05;     ///< per variant
  double max_noise = 0.01;       ///< relative half-width of the median interval
  double timeout_seconds = 2.0;  ///< of the measurement
  double watchdog_seconds = 10.0;  ///< a variant still running after this is a timeout
};

/// What the search minimises or maximises. Every result stores its time;
/// the objective is computed from it (and from the telemetry), so one store
/// serves several objectives.
struct objective_spec {
  enum class kind {
    time,    ///< the median time, smaller is better
    metric,  ///< `expression` of the problem size, the parameters and time_us (the median, µs)
    energy,  ///< joules per run, from NVML's energy counter (cuda only)
  };
  kind how = kind::time;
  std::string name = "time";
  std::string expression;  ///< metric only
  bool maximize = false;   ///< metric only: "goal = max" (GFLOP/s, GB/s)
};

/// What one run must do at least (`[model]`): expressions of the problem
/// size and the parameters, for throughput and the fraction of the device's
/// ceilings. The flops compare with the bf16 tensor-core rate where
/// `bf16_when` is nonzero (e.g. "variant == 1"), else with FP32.
struct work_model {
  std::string bytes_read = "0";
  std::string bytes_written = "0";
  std::string flops = "0";
  std::string bf16_when = "0";
};

struct kernel_spec {
  std::filesystem::path path;  ///< the spec file; relative paths in it are relative to its folder
  std::string name;
  backend_kind backend = backend_kind::host;
  std::filesystem::path source;
  std::string function;
  std::vector<std::string> compile_options;

  std::vector<parameter> parameters;
  std::vector<std::string> constraints;
  /// The problem size: names and values, usable in every expression.
  std::vector<std::pair<std::string, double>> problem;
  /// The baseline configuration, parameter name -> value.
  std::vector<std::pair<std::string, parameter_value>> baseline;

  /// Launch geometry (cuda): up to three expressions each.
  std::vector<std::string> grid;
  std::vector<std::string> block;
  std::string shared_memory = "0";
  /// Host backend: threads a variant uses (an expression); variants over
  /// the host's limit are rejected as `resources` before compiling.
  std::string threads = "1";

  std::vector<argument_spec> arguments;

  /// The reference: a function of the same signature in `reference_source`
  /// (default: the kernel's source), compiled with the baseline's parameters.
  std::string reference_function;
  std::filesystem::path reference_source;
  tolerance accuracy;

  measure_settings measurement;
  objective_spec objective;
  std::optional<work_model> model;  ///< [model], when the spec has one

  /// Not read from the file: when set, each verified run of a variant
  /// writes every buffer argument there as NAME.npy (and each output's
  /// reference as NAME_reference.npy); the last run's files stay.
  std::filesystem::path dump_directory = {};

  /// The problem size as JSON text, {"n": 256}: the store's problem key.
  [[nodiscard]] std::string problem_text() const;
};

/// Reads and checks a TOML spec. Throws tunekit::spec_error with one line
/// "FILE:LINE: what is wrong" for unknown keys, wrong types, missing files,
/// expressions naming unknown names, a baseline outside the space, and
/// anything else a run would trip over later.
[[nodiscard]] kernel_spec load_spec(const std::filesystem::path& path);

/// The [model]'s work for configuration `index` of `space`; nothing when the
/// spec has no [model].
[[nodiscard]] std::optional<measure::work> work_of(const kernel_spec& spec, const search_space& space, std::size_t index);
/// As load_spec, from text; `path` names it in messages and anchors relative paths.
[[nodiscard]] kernel_spec parse_spec(std::string_view text, const std::filesystem::path& path);

/// The search space a spec defines (its problem size as constants).
[[nodiscard]] space_definition space_of(const kernel_spec& spec);

/// The index of the spec's baseline in `space`; nullopt when the baseline
/// violates the constraints.
[[nodiscard]] std::optional<std::size_t> find_baseline(const kernel_spec& spec, const search_space& space);

/// The index of the spec's baseline in `space`. Throws spec_error when the
/// baseline is not a valid configuration of the space.
[[nodiscard]] std::size_t baseline_index(const kernel_spec& spec, const search_space& space);

}  // namespace tunekit
