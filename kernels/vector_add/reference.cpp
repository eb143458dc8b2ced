// vector_add's CPU reference: c = a + b, each sum in float64 rounded once to float32.
#include <cstddef>

extern "C" void vector_add_reference(void* const* args) {
  auto* c = static_cast<float*>(args[0]);
  const auto* a = static_cast<const float*>(args[1]);
  const auto* b = static_cast<const float*>(args[2]);
  const int n = *static_cast<const int*>(args[3]);
  for (std::ptrdiff_t i = 0; i < n; ++i) c[i] = static_cast<float>(static_cast<double>(a[i]) + static_cast<double>(b[i]));
}
