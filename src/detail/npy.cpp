#include "detail/npy.hpp"

#include <fstream>

#include "tunekit/error.hpp"

namespace tunekit::detail {

namespace {

std::string numpy_type(element_type type) {
  switch (type) {
    case element_type::float32: return "<f4";
    case element_type::float64: return "<f8";
    case element_type::int32: return "<i4";
    case element_type::int64: return "<i8";
    case element_type::uint8: return "|u1";
  }
  return "|u1";
}

}  // namespace

void write_npy(const std::filesystem::path& path, element_type type, const unsigned char* bytes, std::size_t count) {
  std::string header = "{'descr': '" + numpy_type(type) + "', 'fortran_order': False, 'shape': (" +
                       std::to_string(count) + ",), }";
  // Magic (6) + version (2) + length (2) + header + '\n', padded with spaces to a multiple of 64.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                      static_cast<unsigned char>(header.size() & 0xff),
                                      static_cast<unsigned char>(header.size() >> 8)};
  file.write(reinterpret_cast<const char*>(preamble), sizeof preamble);
  file.write(header.data(), static_cast<std::streamsize>(header.size()));
  file.write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(count * size_of(type)));
  if (!file) throw error("cannot write " + path.string());
}

std::vector<std::filesystem::path> write_arguments_npy(const std::filesystem::path& directory, const kernel_spec& spec,
                                                       const std::vector<const unsigned char*>& buffers,
                                                       const std::vector<std::size_t>& counts,
                                                       const std::vector<std::vector<unsigned char>>& reference) {
  std::filesystem::create_directories(directory);
  std::vector<std::filesystem::path> written;
  std::size_t output = 0;
  for (std::size_t a = 0; a < spec.arguments.size(); ++a) {
    const auto& argument = spec.arguments[a];
    if (argument.scalar) continue;
    written.push_back(directory / (argument.name + ".npy"));
    write_npy(written.back(), argument.type, buffers[a], counts[a]);
    if (argument.direction == argument_direction::in) continue;
    if (output < reference.size()) {
      written.push_back(directory / (argument.name + "_reference.npy"));
      write_npy(written.back(), argument.type, reference[output].data(), counts[a]);
    }
    ++output;
  }
  return written;
}

}  // namespace tunekit::detail
