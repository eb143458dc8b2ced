#pragma once
// The CUDA backend: variants compiled by NVRTC on the tuner's threads (cubins
// cached on disk), run in a worker process per GPU. The tuner process itself
// never touches the GPU: an illegal address, a sticky error or a hung kernel
// kills only a worker, which is started again while the session goes on.
// Workers are forked by a launcher process, itself forked once per process on
// first use: before this process uses NVRTC (after which a forked child can
// no longer create a CUDA context) or starts threads. A program that compiles
// with NVRTC before it tunes calls start_worker_launcher() first.
//
// Each variant in the worker: its resources read from the loaded function
// (registers, static shared memory, local/spill bytes) and checked with the
// occupancy model; dynamic shared memory above 48 KB opted in; inputs
// uploaded, outputs poisoned, one run verified against the host reference;
// then timed by the measurement engine (cold, L2 flushed, NVML telemetry).
//
//   auto backend = tunekit::cuda::make_backend(spec, space, cache, {0});
//   auto outcome = backend->evaluate(index);

#include <filesystem>
#include <memory>
#include <vector>

#include "tunekit/backend.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/spec.hpp"

namespace tunekit::cuda {

/// The backend for `spec` on the GPUs `devices` (CUDA ordinals, one lane
/// each; they must be one model). `spec` and `space` must outlive it; `spec`
/// must have been read from its file (the workers read it again; its
/// measurement settings travel with the request).
/// Throws tunekit::spec_error when the reference fails, tunekit::error when a
/// GPU does not answer or the GPUs differ.
[[nodiscard]] std::unique_ptr<variant_backend> make_backend(const kernel_spec& spec, const search_space& space,
                                                            const std::filesystem::path& cache_directory,
                                                            const std::vector<int>& devices);

/// GPUs visible here, counted by a worker so that this process does not
/// create a CUDA context. 0 when there is no driver or no GPU.
[[nodiscard]] int count_devices_without_context();

/// Forks the worker launcher now, if it is not running yet.
void start_worker_launcher();

}  // namespace tunekit::cuda
