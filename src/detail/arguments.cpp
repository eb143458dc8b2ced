#include "detail/arguments.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <type_traits>

namespace tunekit::detail {

namespace {

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

// Smooth value noise: random lattice values every `scale` elements along a
// row of `width` and down the rows, blended with a smoothstep; two octaves
// (scale, and scale / 4 at a quarter of the weight), normalised to [0, 1].
class value_noise {
 public:
  value_noise(std::uint64_t seed, double scale, std::size_t width, std::size_t height) : width_(width) {
    for (const double each : {scale, scale / 4.0}) {
      octave level{.scale = each,
                    .columns = static_cast<std::size_t>(static_cast<double>(width) / each) + 2,
                    .rows = static_cast<std::size_t>(static_cast<double>(height) / each) + 2,
                    .lattice = {}};
      input_stream random{seed++};
      level.lattice.resize(level.columns * level.rows);
      for (auto& value : level.lattice) value = random.uniform();
      octaves_.push_back(std::move(level));
    }
  }

  double at(std::size_t index) const {
    const double x = static_cast<double>(index % width_);
    const double y = static_cast<double>(index / width_);
    return (sample(octaves_[0], x, y) + 0.25 * sample(octaves_[1], x, y)) / 1.25;
  }

 private:
  struct octave {
    double scale = 1.0;
    std::size_t columns = 0;
    std::size_t rows = 0;
    std::vector<double> lattice;
  };

  static double sample(const octave& level, double x, double y) {
    const double u = x / level.scale;
    const double v = y / level.scale;
    const auto column = static_cast<std::size_t>(u);
    const auto row = static_cast<std::size_t>(v);
    const auto smooth = [](double t) { return t * t * (3.0 - 2.0 * t); };
    const double s = smooth(u - static_cast<double>(column));
    const double t = smooth(v - static_cast<double>(row));
    const auto at = [&](std::size_t r, std::size_t c) { return level.lattice[r * level.columns + c]; };
    const double top = at(row, column) + s * (at(row, column + 1) - at(row, column));
    const double bottom = at(row + 1, column) + s * (at(row + 1, column + 1) - at(row + 1, column));
    return top + t * (bottom - top);
  }

  std::size_t width_;
  std::vector<octave> octaves_;
};

template <typename T>
void fill_typed(unsigned char* data, std::size_t count, const buffer_init& init, std::size_t width) {
  T* out = reinterpret_cast<T*>(data);
  input_stream random{init.seed};
  std::optional<value_noise> noise;
  if (init.how == buffer_init::kind::blobs) noise.emplace(init.seed, init.scale, width, (count + width - 1) / width);
  for (std::size_t i = 0; i < count; ++i) {
    double value = 0.0;
    switch (init.how) {
      case buffer_init::kind::random:
        value = init.low + (init.high - init.low) * random.uniform();
        if (init.step > 0.0) value = std::nearbyint(value / init.step) * init.step;
        break;
      case buffer_init::kind::sequence: value = static_cast<double>(i); break;
      case buffer_init::kind::constant: value = init.value; break;
      case buffer_init::kind::blobs: value = 255.0 * noise->at(i); break;
      case buffer_init::kind::file: break;
    }
    if constexpr (std::is_floating_point_v<T>) {
      out[i] = static_cast<T>(value);
    } else {
      out[i] = static_cast<T>(std::floor(value));
    }
  }
}

void fill(unsigned char* data, std::size_t count, element_type type, const buffer_init& init, std::size_t width) {
  if (init.how == buffer_init::kind::file) {
    const auto bytes = count * size_of(type);
    std::ifstream file(init.file, std::ios::binary);
    file.read(reinterpret_cast<char*>(data), static_cast<std::streamsize>(bytes));
    if (static_cast<std::size_t>(file.gcount()) != bytes)
      throw spec_error(init.file.string() + ": holds fewer than the " + std::to_string(bytes) + " bytes the buffer needs");
    return;
  }
  switch (type) {
    case element_type::float32: fill_typed<float>(data, count, init, width); break;
    case element_type::float64: fill_typed<double>(data, count, init, width); break;
    case element_type::int32: fill_typed<std::int32_t>(data, count, init, width); break;
    case element_type::int64: fill_typed<std::int64_t>(data, count, init, width); break;
    case element_type::uint8: fill_typed<std::uint8_t>(data, count, init, width); break;
  }
}

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

}  // namespace

void name_configuration(variable_table& names, const kernel_spec& spec, const search_space& space, std::size_t index) {
  for (const auto& [name, value] : spec.problem) names.add(name, value);
  const auto configuration = space.at(index);
  for (std::size_t p = 0; p < space.parameters().size(); ++p)
    names.add(space.parameters()[p].name, space.parameters()[p].numeric(configuration.value_indices[p]));
}


argument_set::argument_set(const kernel_spec& spec, const search_space& space, std::size_t index) {
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
      std::size_t width = 1;
      if (argument.init.how == buffer_init::kind::blobs) {
        const double row = expression(argument.init.width, names).evaluate();
        if (!(row >= 1) || !std::isfinite(row))
          throw spec_error(spec.path.string() + ":" + std::to_string(argument.line) + ": blobs width of '" + argument.name +
                           "' is not a size");
        width = static_cast<std::size_t>(row);
      }
      fill(storage.back().data(), elements, argument.type, argument.init, width);
      counts.push_back(elements);
      if (argument.direction != argument_direction::in) output_indices.push_back(a);
    }
  }
  for (auto& each : storage) pointers.push_back(each.data());
}

void argument_set::poison(const kernel_spec& spec) {
  for (const auto a : output_indices)
    if (spec.arguments[a].direction == argument_direction::out)
      std::memset(storage[a].data(), poison_byte, storage[a].size());
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
}  // namespace tunekit::detail
