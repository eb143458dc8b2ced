#include "tunekit/cuda/telemetry.hpp"

#include <cuda_runtime_api.h>

#include <array>
#include <cmath>
#include <limits>
#include <mutex>

#include "cuda/detail/dynamic_library.hpp"

namespace tunekit::cuda {

namespace {

// The slice of NVML's C interface we use, declared from its documentation:
// every call returns 0 (NVML_SUCCESS) or an error code; devices are opaque.
using nvml_return = int;
using nvml_device = struct nvml_device_opaque*;
constexpr nvml_return nvml_success = 0;
constexpr int nvml_clock_sm = 1;
constexpr int nvml_clock_memory = 2;
constexpr int nvml_temperature_gpu = 0;

struct nvml_api {
  nvml_return (*init)() = nullptr;
  nvml_return (*shutdown)() = nullptr;
  const char* (*error_string)(nvml_return) = nullptr;
  nvml_return (*driver_version)(char*, unsigned) = nullptr;
  nvml_return (*handle_by_pci_bus_id)(const char*, nvml_device*) = nullptr;
  nvml_return (*clock)(nvml_device, int, unsigned*) = nullptr;
  nvml_return (*max_clock)(nvml_device, int, unsigned*) = nullptr;
  nvml_return (*clock_event_reasons)(nvml_device, unsigned long long*) = nullptr;
  nvml_return (*power)(nvml_device, unsigned*) = nullptr;
  nvml_return (*temperature)(nvml_device, int, unsigned*) = nullptr;
  nvml_return (*energy)(nvml_device, unsigned long long*) = nullptr;
};

// Loaded and initialised once per process, shut down at exit.
class nvml_library {
 public:
  static nvml_library& instance() {
    static nvml_library library;
    return library;
  }

  [[nodiscard]] bool ready() const { return reason_.empty(); }
  [[nodiscard]] const std::string& reason() const { return reason_; }
  [[nodiscard]] const nvml_api& api() const { return api_; }

  [[nodiscard]] std::string describe(nvml_return status) const {
    const char* text = api_.error_string != nullptr ? api_.error_string(status) : nullptr;
    return text != nullptr ? text : "NVML error " + std::to_string(status);
  }

  nvml_library(const nvml_library&) = delete;
  nvml_library& operator=(const nvml_library&) = delete;

 private:
  nvml_library() {
    detail::dynamic_library library({"libnvidia-ml.so.1", "libnvidia-ml.so"});
    if (!library.loaded()) {
      reason_ = "NVML not found (libnvidia-ml.so.1 is part of the NVIDIA driver)";
      return;
    }
    const auto bind = [&](auto& function, const char* name, const char* fallback = nullptr) {
      library.bind(function, name, fallback);
    };
    bind(api_.init, "nvmlInit_v2");
    bind(api_.shutdown, "nvmlShutdown");
    bind(api_.error_string, "nvmlErrorString");
    bind(api_.driver_version, "nvmlSystemGetDriverVersion");
    bind(api_.handle_by_pci_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
    bind(api_.clock, "nvmlDeviceGetClockInfo");
    bind(api_.max_clock, "nvmlDeviceGetMaxClockInfo");
    // Renamed in NVML 12.x; the old name stays exported by older drivers.
    bind(api_.clock_event_reasons, "nvmlDeviceGetCurrentClocksEventReasons",
         "nvmlDeviceGetCurrentClocksThrottleReasons");
    bind(api_.power, "nvmlDeviceGetPowerUsage");
    bind(api_.temperature, "nvmlDeviceGetTemperature");
    bind(api_.energy, "nvmlDeviceGetTotalEnergyConsumption");
    if (!library.complete()) {
      reason_ = "NVML is too old (a function tunekit needs is missing)";
      return;
    }
    if (const auto status = api_.init(); status != nvml_success) {
      reason_ = "NVML did not initialise: " + describe(status);
      return;
    }
    initialised_ = true;
  }

  ~nvml_library() {
    if (initialised_) api_.shutdown();
    // The library stays mapped: other static destructors may still run.
  }

  nvml_api api_;
  bool initialised_ = false;
  std::string reason_;
};

class nvml_source final : public measure::telemetry_source {
 public:
  nvml_source(const nvml_library& library, nvml_device device, std::string description)
      : api_(library.api()), device_(device), description_(std::move(description)) {
    unsigned mhz = 0;
    if (api_.max_clock(device_, nvml_clock_sm, &mhz) == nvml_success && mhz > 0) max_sm_clock_mhz_ = mhz;
  }

 private:
  std::string do_description() const override { return description_; }
  double do_max_sm_clock_mhz() const override { return max_sm_clock_mhz_; }

  std::optional<measure::telemetry_reading> do_read() override {
    constexpr double missing = std::numeric_limits<double>::quiet_NaN();
    measure::telemetry_reading reading;
    unsigned value = 0;
    // The SM clock is what throttling decisions rest on: no clock, no reading.
    if (api_.clock(device_, nvml_clock_sm, &value) != nvml_success) return std::nullopt;
    reading.sm_clock_mhz = value;
    reading.memory_clock_mhz = api_.clock(device_, nvml_clock_memory, &value) == nvml_success ? value : missing;
    reading.power_watts = api_.power(device_, &value) == nvml_success ? value / 1000.0 : missing;
    reading.temperature_celsius =
        api_.temperature(device_, nvml_temperature_gpu, &value) == nvml_success ? value : missing;
    unsigned long long reasons = 0;
    if (api_.clock_event_reasons(device_, &reasons) == nvml_success) reading.clock_event_reasons = reasons;
    return reading;
  }

  std::optional<double> do_energy_joules() override {
    unsigned long long millijoules = 0;
    if (api_.energy(device_, &millijoules) != nvml_success) return std::nullopt;
    return static_cast<double>(millijoules) / 1000.0;
  }

  const nvml_api& api_;
  nvml_device device_;
  std::string description_;
  double max_sm_clock_mhz_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace

nvml_telemetry open_nvml_telemetry(int ordinal) {
  nvml_telemetry out;
  static std::mutex opening;
  const std::lock_guard lock(opening);
  auto& library = nvml_library::instance();
  if (!library.ready()) {
    out.unavailable_reason = library.reason();
    return out;
  }
  std::array<char, 64> bus_id{};
  if (const auto status = cudaDeviceGetPCIBusId(bus_id.data(), static_cast<int>(bus_id.size()), ordinal);
      status != cudaSuccess) {
    out.unavailable_reason = "CUDA device " + std::to_string(ordinal) + " has no PCI bus id: " +
                             cudaGetErrorString(status);
    return out;
  }
  nvml_device device = nullptr;
  if (const auto status = library.api().handle_by_pci_bus_id(bus_id.data(), &device); status != nvml_success) {
    out.unavailable_reason = "NVML does not know the device at " + std::string(bus_id.data()) + ": " +
                             library.describe(status);
    return out;
  }
  std::string description = "nvml";
  if (const auto version = nvml_driver_version(); !version.empty()) description += " (driver " + version + ")";
  out.source = std::make_unique<nvml_source>(library, device, std::move(description));
  return out;
}

std::string nvml_driver_version() {
  auto& library = nvml_library::instance();
  if (!library.ready()) return {};
  std::array<char, 96> text{};
  if (library.api().driver_version(text.data(), static_cast<unsigned>(text.size())) != nvml_success) return {};
  return text.data();
}

}  // namespace tunekit::cuda
