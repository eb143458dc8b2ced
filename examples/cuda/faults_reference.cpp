// The reference for faults.cu on the host: the same arguments (x, y, n),
// y[i] = 2 * x[i] + 1 in float64.
extern "C" void faults_reference(void* const* args) {
  const auto* x = static_cast<const float*>(args[0]);
  auto* y = static_cast<float*>(args[1]);
  const int n = *static_cast<const int*>(args[2]);
  for (int i = 0; i < n; ++i) y[i] = static_cast<float>(2.0 * x[i] + 1.0);
}
