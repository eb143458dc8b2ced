#include "tunekit/cuda/memory/pinned_pool.hpp"

#include <cuda_runtime_api.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cuda/detail/cuda_check.hpp"
#include "cuda/memory/pinned_core.hpp"
#include "tunekit/error.hpp"

namespace tunekit::cuda {

namespace {

// The runtime's last error is set by a failed call; an out-of-memory the pool
// handles must not surface in someone else's cudaGetLastError() check.
void forget_last_error() noexcept { static_cast<void>(cudaGetLastError()); }

// Unpinning from a static destructor after the runtime has begun unloading
// fails harmlessly (the process's memory goes with it): no report then.
void report_unpin_failure(cudaError_t status, const char* call) noexcept {
  if (status == cudaSuccess || status == cudaErrorCudartUnloading) return;
  std::fprintf(stderr, "tunekit: %s failed: %s\n", call, cudaGetErrorName(status));
}

/// cudaHostAlloc(portable) / cudaFreeHost.
class host_alloc_upstream final : public detail::pinned_upstream {
  void* do_pin(std::size_t bytes) override {
    void* pointer = nullptr;
    const cudaError_t status = cudaHostAlloc(&pointer, bytes, cudaHostAllocPortable);
    if (status == cudaErrorMemoryAllocation) {
      forget_last_error();
      return nullptr;
    }
    if (status != cudaSuccess)
      detail::throw_cuda_error(status, "cudaHostAlloc(cudaHostAllocPortable)", __FILE__, __LINE__);
    return pointer;
  }

  void do_unpin(void* pointer, std::size_t) noexcept override {
    report_unpin_failure(cudaFreeHost(pointer), "cudaFreeHost");
  }
};

/// Page-aligned malloc + cudaHostRegister(portable) / cudaHostUnregister + free.
class host_register_upstream final : public detail::pinned_upstream {
 public:
  host_register_upstream() {
    const long page = sysconf(_SC_PAGESIZE);
    page_bytes_ = page > 0 ? static_cast<std::size_t>(page) : 4096;
  }

 private:
  void* do_pin(std::size_t bytes) override {
    const std::size_t rounded = (bytes + page_bytes_ - 1) / page_bytes_ * page_bytes_;
    void* pointer = std::aligned_alloc(page_bytes_, rounded);
    if (pointer == nullptr) return nullptr;
    const cudaError_t status = cudaHostRegister(pointer, rounded, cudaHostRegisterPortable);
    if (status != cudaSuccess) {
      std::free(pointer);
      if (status == cudaErrorMemoryAllocation) {
        forget_last_error();
        return nullptr;
      }
      detail::throw_cuda_error(status, "cudaHostRegister(cudaHostRegisterPortable)", __FILE__, __LINE__);
    }
    return pointer;
  }

  void do_unpin(void* pointer, std::size_t) noexcept override {
    report_unpin_failure(cudaHostUnregister(pointer), "cudaHostUnregister");
    std::free(pointer);
  }

  std::size_t page_bytes_ = 4096;
};

std::unique_ptr<detail::pinned_upstream> make_upstream(pinned_pool_options::method pinning) {
  switch (pinning) {
    case pinned_pool_options::method::host_alloc: return std::make_unique<host_alloc_upstream>();
    case pinned_pool_options::method::host_register: return std::make_unique<host_register_upstream>();
  }
  throw invalid_argument("pinned pool: unknown pinning method");
}

}  // namespace

// The state is the core itself, so the thread caches' weak_ptrs share the
// pool's control block (see pinned_core.hpp for the scheme).
struct pinned_pool::state : detail::pinned_core {
  using detail::pinned_core::pinned_core;
};

pinned_pool::pinned_pool(const pinned_pool_options& options)
    : state_(std::make_shared<state>(make_upstream(options.pinning),
                                     detail::pinned_core_options{.maximum_bytes = options.maximum_bytes,
                                                                 .checks = options.checks})) {}

// Unpin everything now, even if an exiting thread briefly holds the state.
pinned_pool::~pinned_pool() { state_->shutdown(); }

void* pinned_pool::allocate(std::size_t bytes) { return state_->allocate(bytes); }

void pinned_pool::deallocate(void* pointer, std::size_t bytes) { state_->deallocate(pointer, bytes); }

memory_statistics pinned_pool::statistics() const { return state_->statistics(); }

void pinned_pool::release() { state_->release(); }

}  // namespace tunekit::cuda
