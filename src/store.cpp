#include "tunekit/store.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "detail/kernel_tuner_files.hpp"
#include "tunekit/error.hpp"

namespace tunekit {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// "TKRS" in the SQLite header's application-id field marks a tunekit store.
constexpr std::int32_t application_id = 0x544B5253;
// Schema revisions this build reads and writes; older ones are migrated on open.
constexpr int schema_version = 2;
constexpr const char* kernel_tuner_tag = "kernel_tuner";
constexpr const char* t4_tag = "t4";

std::string quoted(const std::filesystem::path& path) {
  std::string text(1, '\'');
  text += path.string();
  text += '\'';
  return text;
}

// "2023-01-24 01:03:17.677311+00:00": Python's str() of an aware UTC datetime,
// the form Kernel Tuner writes, so tunekit's own results export unchanged.
std::string utc_now_text() {
  const auto now = std::chrono::system_clock::now();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00:00", parts.tm_year + 1900, parts.tm_mon + 1,
                parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, static_cast<long long>(micros % 1'000'000));
  return text;
}

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------- JSON values

// A JSON value of a parameter as tunekit holds it; booleans become "True" or
// "False", the text Kernel Tuner puts in its cache keys.
template <typename Json>
parameter_value value_of(const Json& value, const std::string& name) {
  if (value.is_boolean()) return parameter_value{std::string(value.template get<bool>() ? "True" : "False")};
  if (value.is_number_unsigned()) {
    const auto number = value.template get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw invalid_argument("parameter '" + name + "' has a value beyond 64-bit integers");
    return parameter_value{static_cast<std::int64_t>(number)};
  }
  if (value.is_number_integer()) return parameter_value{value.template get<std::int64_t>()};
  if (value.is_number_float()) return parameter_value{value.template get<double>()};
  if (value.is_string()) return parameter_value{value.template get<std::string>()};
  throw invalid_argument("parameter '" + name + "' has a value that is not a number, string or boolean");
}

ordered_json json_of(const parameter_value& value) {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return *integer;
  if (const auto* real = std::get_if<double>(&value)) return *real;
  return std::get<std::string>(value);
}

stored_configuration configuration_from_json(const ordered_json& object) {
  if (!object.is_object()) throw invalid_argument("a configuration is not a JSON object");
  stored_configuration configuration;
  configuration.reserve(object.size());
  for (const auto& [name, value] : object.items()) configuration.emplace_back(name, value_of(value, name));
  return configuration;
}

ordered_json configuration_json(const stored_configuration& configuration) {
  ordered_json object = ordered_json::object();
  for (const auto& [name, value] : configuration) object[name] = json_of(value);
  return object;
}

// A number as JSON: whole values as integers, as Kernel Tuner's files mostly
// hold them ("verification_time": 0), unless the file had them as floats.
ordered_json number_json(double value, bool as_float) {
  constexpr double exact_integers = 9007199254740992.0;  // 2^53
  if (!as_float && std::isfinite(value) && value == std::trunc(value) && std::fabs(value) < exact_integers)
    return static_cast<std::int64_t>(value);
  return value;
}

bool is_whole_float(const ordered_json& value) {
  if (!value.is_number_float()) return false;
  const double number = value.get<double>();
  return std::isfinite(number) && number == std::trunc(number);
}

template <typename Json>
Json parse_json(std::string_view text, const char* what) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& failure) {
    throw error(std::string("results store holds malformed JSON in ") + what + ": " + failure.what());
  }
}

std::string dump(const ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ---------------------------------------------------------------- Python's json module, byte for byte

// repr(float): the shortest digits that read back exactly, positional for
// decimal exponents -4..15, otherwise d.ddde±XX.
std::string python_float(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[64];
  const auto [end, failure] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  if (failure != std::errc{}) throw error("cannot format a number");
  std::string_view text(buffer, static_cast<std::size_t>(end - buffer));
  std::string out;
  if (text.front() == '-') {
    out += '-';
    text.remove_prefix(1);
  }
  const std::size_t e = text.find('e');
  std::string digits;
  for (char c : text.substr(0, e))
    if (c != '.') digits += c;
  std::string_view exponent_text = text.substr(e + 1);
  const bool negative_exponent = exponent_text.front() == '-';
  if (exponent_text.front() == '+' || exponent_text.front() == '-') exponent_text.remove_prefix(1);
  int exponent = 0;
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);
  if (negative_exponent) exponent = -exponent;
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      const auto integer_digits = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() <= integer_digits) {
        out += digits;
        out.append(integer_digits - digits.size(), '0');
        out += ".0";
      } else {
        out += digits.substr(0, integer_digits);
        out += '.';
        out += digits.substr(integer_digits);
      }
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-exponent - 1), '0');
      out += digits;
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  out += negative_exponent ? "e-" : "e+";
  const std::string magnitude = std::to_string(std::abs(exponent));
  if (magnitude.size() < 2) out += '0';
  out += magnitude;
  return out;
}

void append_python_string(std::string& out, const std::string& text) {
  // nlohmann's ASCII escaping matches json.dumps(ensure_ascii=True): short
  // escapes for \b \f \n \r \t, lower-case \uXXXX (surrogate pairs) otherwise.
  out += json(text).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

// json.dumps(value) (compact, ", " and ": ") or json.dumps(value, indent="").
template <typename Json>
void append_python(std::string& out, const Json& value, bool indented) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: out += "null"; return;
    case nlohmann::json::value_t::boolean: out += value.template get<bool>() ? "true" : "false"; return;
    case nlohmann::json::value_t::number_integer: out += std::to_string(value.template get<std::int64_t>()); return;
    case nlohmann::json::value_t::number_unsigned: out += std::to_string(value.template get<std::uint64_t>()); return;
    case nlohmann::json::value_t::number_float: out += python_float(value.template get<double>()); return;
    case nlohmann::json::value_t::string:
      append_python_string(out, value.template get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array: {
      if (value.empty()) {
        out += "[]";
        return;
      }
      out += indented ? "[\n" : "[";
      bool first = true;
      for (const auto& element : value) {
        if (!first) out += indented ? ",\n" : ", ";
        first = false;
        append_python(out, element, indented);
      }
      out += indented ? "\n]" : "]";
      return;
    }
    case nlohmann::json::value_t::object: {
      if (value.empty()) {
        out += "{}";
        return;
      }
      out += indented ? "{\n" : "{";
      bool first = true;
      for (const auto& [key, element] : value.items()) {
        if (!first) out += indented ? ",\n" : ", ";
        first = false;
        append_python_string(out, key);
        out += ": ";
        append_python(out, element, indented);
      }
      out += indented ? "\n}" : "}";
      return;
    }
    default: throw error("cannot write a binary JSON value");
  }
}

template <typename Json>
std::string python_text(const Json& value) {
  std::string out;
  append_python(out, value, false);
  return out;
}

// How Kernel Tuner writes a parameter value in a cache key: Python's str().
std::string python_key_text(const ordered_json& value) {
  if (value.is_boolean()) return value.get<bool>() ? "True" : "False";
  if (value.is_string()) return value.get<std::string>();
  return python_text(value);
}

// ---------------------------------------------------------------- SQLite

// SQLITE_BUSY / SQLITE_LOCKED after the busy timeout: the transaction is retried.
class store_busy : public error {
 public:
  using error::error;
};

class database {
 public:
  database(const std::filesystem::path& path, int flags) : path_(path) {
    const int code = sqlite3_open_v2(path.c_str(), &handle_, flags, nullptr);
    if (code != SQLITE_OK) {
      const std::string reason = handle_ != nullptr ? sqlite3_errmsg(handle_) : sqlite3_errstr(code);
      sqlite3_close_v2(handle_);
      handle_ = nullptr;
      throw invalid_argument("cannot open results store " + quoted(path) + ": " + reason);
    }
    check(sqlite3_extended_result_codes(handle_, 1), "enabling extended result codes");
  }
  ~database() { sqlite3_close_v2(handle_); }
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  [[nodiscard]] sqlite3* handle() const { return handle_; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  void check(int code, std::string_view doing) const {
    if (code != SQLITE_OK) fail(code, doing);
  }

  // Corruption and foreign files are the user's input gone wrong; a busy
  // database is retried; anything else is the platform failing.
  [[noreturn]] void fail(int code, std::string_view doing) const {
    const int primary = code & 0xff;
    std::string reason = handle_ != nullptr ? sqlite3_errmsg(handle_) : sqlite3_errstr(code);
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
      throw invalid_argument("results store " + quoted(path_) + " is corrupt (" + reason + " while " +
                             std::string(doing) + ")");
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
      throw store_busy("results store " + quoted(path_) + " stayed locked by another process while " +
                       std::string(doing));
    throw error("results store " + quoted(path_) + ": " + std::string(doing) + ": " + reason);
  }

  void execute(const char* sql) const {
    char* message = nullptr;
    const int code = sqlite3_exec(handle_, sql, nullptr, nullptr, &message);
    if (message != nullptr) sqlite3_free(message);
    if (code != SQLITE_OK) fail(code, sql);
  }

 private:
  std::filesystem::path path_;
  sqlite3* handle_ = nullptr;
};

class statement {
 public:
  statement(const database& db, std::string_view sql) : db_(&db) {
    db.check(sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                &handle_, nullptr),
             "preparing a statement");
  }
  ~statement() { sqlite3_finalize(handle_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int index, std::string_view text) {
    // An empty view may have no data pointer, which SQLite would bind as NULL.
    const char* data = text.data() != nullptr ? text.data() : "";
    return checked(sqlite3_bind_text64(handle_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  statement& bind(int index, std::int64_t value) { return checked(sqlite3_bind_int64(handle_, index, value)); }
  statement& bind(int index, double value) {
    return std::isnan(value) ? checked(sqlite3_bind_null(handle_, index))
                             : checked(sqlite3_bind_double(handle_, index, value));
  }
  statement& bind(int index, const std::optional<double>& value) {
    return value ? bind(index, *value) : checked(sqlite3_bind_null(handle_, index));
  }

  /// True while there is a row.
  bool step() {
    const int code = sqlite3_step(handle_);
    if (code == SQLITE_ROW) return true;
    if (code == SQLITE_DONE) return false;
    db_->fail(code, "running a statement");
  }
  void run() {
    while (step()) {
    }
  }

  [[nodiscard]] bool is_null(int column) const { return sqlite3_column_type(handle_, column) == SQLITE_NULL; }
  [[nodiscard]] std::int64_t integer(int column) const { return sqlite3_column_int64(handle_, column); }
  [[nodiscard]] double real(int column) const {
    return is_null(column) ? not_a_number : sqlite3_column_double(handle_, column);
  }
  [[nodiscard]] std::optional<double> optional_real(int column) const {
    if (is_null(column)) return std::nullopt;
    return sqlite3_column_double(handle_, column);
  }
  [[nodiscard]] std::string text(int column) const {
    const auto* bytes = sqlite3_column_text(handle_, column);
    if (bytes == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(sqlite3_column_bytes(handle_, column)));
  }

  /// Clears the bindings and rewinds; a statement left mid-result would hold a read snapshot.
  void reset() {
    sqlite3_reset(handle_);
    sqlite3_clear_bindings(handle_);
  }

 private:
  statement& checked(int code) {
    db_->check(code, "binding a value");
    return *this;
  }

  const database* db_;
  sqlite3_stmt* handle_ = nullptr;
};

// Borrowing a cached statement: it is reset when the borrow ends.
class statement_use {
 public:
  explicit statement_use(statement& borrowed) : statement_(borrowed) { statement_.reset(); }
  ~statement_use() { statement_.reset(); }
  statement_use(const statement_use&) = delete;
  statement_use& operator=(const statement_use&) = delete;
  statement* operator->() { return &statement_; }
  statement& get() { return statement_; }

 private:
  statement& statement_;
};

class transaction {
 public:
  enum kind { read, write };
  transaction(const database& db, kind mode) : db_(db) {
    // A write transaction takes the write lock up front, so it waits in the
    // busy handler instead of failing later on upgrade.
    db_.execute(mode == write ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  ~transaction() {
    if (!finished_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  void commit() {
    db_.execute("COMMIT");
    finished_ = true;
  }

 private:
  const database& db_;
  bool finished_ = false;
};

// Runs `body` (one whole transaction) again while another process holds the
// store longer than the busy timeout, backing off with jitter, for up to two minutes.
template <typename Body>
auto retrying(const std::filesystem::path& path, Body&& body) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::minutes(2);
  thread_local std::minstd_rand jitter(static_cast<unsigned>(::getpid()) ^
                                       static_cast<unsigned>(clock::now().time_since_epoch().count()));
  for (int attempt = 0;; ++attempt) {
    try {
      return body();
    } catch (const store_busy&) {
      if (clock::now() > deadline)
        throw error("results store " + quoted(path) + " stayed locked by another process for two minutes");
      const int ceiling = 1 << std::min(attempt, 7);
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + static_cast<int>(jitter() % static_cast<unsigned>(ceiling))));
    }
  }
}

constexpr const char* schema_sql = R"sql(
CREATE TABLE devices (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  architecture TEXT NOT NULL,
  driver TEXT NOT NULL,
  UNIQUE (name, architecture, driver));
CREATE TABLE kernels (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  source_hash TEXT NOT NULL,
  UNIQUE (name, source_hash));
-- One (device, kernel, problem size): its objective, its tunable parameters
-- (JSON [{"name", "values"}]) and, per file format, the document header an
-- import found (JSON), so an export writes it back unchanged.
CREATE TABLE problems (
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL REFERENCES devices (id),
  kernel_id INTEGER NOT NULL REFERENCES kernels (id),
  problem_size TEXT NOT NULL,
  objective TEXT NOT NULL,
  parameters TEXT NOT NULL DEFAULT '[]',
  formats TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  UNIQUE (device_id, kernel_id, problem_size));
-- One measured configuration. configuration_key is the identity (names and
-- value texts sorted by name); configuration keeps the values' JSON types and
-- the parameters' order. Times are milliseconds.
CREATE TABLE results (
  id INTEGER PRIMARY KEY,
  problem_id INTEGER NOT NULL REFERENCES problems (id),
  configuration_key TEXT NOT NULL,
  configuration TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ok', 'compile_error', 'resources', 'launch_error', 'device_fault',
                                         'timeout', 'wrong_result', 'invalid_output')),
  value REAL,
  samples TEXT NOT NULL DEFAULT '[]',
  measurements TEXT NOT NULL DEFAULT '[]',
  telemetry TEXT NOT NULL DEFAULT '{}',
  cost REAL,
  compile_time REAL,
  verification_time REAL,
  benchmark_time REAL,
  strategy_time REAL,
  framework_time REAL,
  measured_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  extra TEXT NOT NULL DEFAULT '{}',
  UNIQUE (problem_id, configuration_key));
-- The unique index serves every lookup by problem (a problem's rows, its
-- best); no other index, so a commit writes as few pages as it can.
CREATE VIEW results_with_keys AS
  SELECT d.name AS device, d.architecture, d.driver, k.name AS kernel, k.source_hash, p.problem_size, p.objective,
         r.configuration, r.status, r.value, r.cost, r.measured_at, r.recorded_at, r.id AS result_id
  FROM results r JOIN problems p ON p.id = r.problem_id JOIN devices d ON d.id = p.device_id
       JOIN kernels k ON k.id = p.kernel_id;
)sql";

// Revision 2: what a device was measured to reach (copy bandwidth, matrix
// product rates), measured once and read by every later report.
constexpr const char* ceilings_sql = R"sql(
CREATE TABLE device_ceilings (
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL REFERENCES devices (id),
  name TEXT NOT NULL,
  value REAL NOT NULL,
  unit TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}',
  measured_at TEXT NOT NULL,
  UNIQUE (device_id, name));
)sql";

constexpr const char* result_columns =
    "configuration, status, value, samples, measurements, telemetry, cost, compile_time, verification_time, "
    "benchmark_time, strategy_time, framework_time, measured_at, recorded_at, extra";

// A row as stored: the result plus its configuration's JSON (types and order kept).
struct stored_row {
  std::string configuration;
  stored_result result;
};

std::vector<double> samples_from_json(const std::string& text) {
  const auto array = parse_json<json>(text, "samples");
  std::vector<double> samples;
  samples.reserve(array.size());
  for (const auto& each : array) samples.push_back(each.is_number() ? each.get<double>() : not_a_number);
  return samples;
}

std::string samples_json(const std::vector<double>& samples) {
  json array = json::array();
  for (double each : samples) array.push_back(each);  // NaN becomes null
  return array.dump();
}

std::vector<measurement> measurements_from_json(const std::string& text) {
  const auto array = parse_json<json>(text, "measurements");
  std::vector<measurement> measurements;
  for (const auto& each : array)
    measurements.push_back({each.value("name", std::string()),
                            each.contains("value") && each["value"].is_number() ? each["value"].get<double>() : not_a_number,
                            each.value("unit", std::string())});
  return measurements;
}

std::string measurements_json(const std::vector<measurement>& measurements) {
  json array = json::array();
  for (const auto& each : measurements) array.push_back({{"name", each.name}, {"value", each.value}, {"unit", each.unit}});
  return array.dump();
}

std::string checked_object_text(const std::string& text, const char* what) {
  if (text.empty()) return "{}";
  json parsed;
  try {
    parsed = json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw invalid_argument(std::string("a result's ") + what + " is not JSON");
  }
  if (!parsed.is_object()) throw invalid_argument(std::string("a result's ") + what + " is not a JSON object");
  return text;
}

}  // namespace

// ---------------------------------------------------------------- store state

class results_store::impl {
 public:
  impl(const std::filesystem::path& path, store_access access) : access_(access) {
    refuse_foreign_bytes(path, access);
    // Reading through a writable connection lets the last one out remove the
    // -wal and -shm files; a file we may not write is read read-only.
    const int flags = access == store_access::read_write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                      : ::access(path.c_str(), W_OK) == 0 ? SQLITE_OPEN_READWRITE
                                                          : SQLITE_OPEN_READONLY;
    db_ = std::make_unique<database>(path, flags | SQLITE_OPEN_NOMUTEX);
    db_->check(sqlite3_busy_timeout(db_->handle(), 5000), "setting the busy timeout");
    retrying(path, [&] { validate_or_initialise(); });
    if (access == store_access::read_write) {
      enable_write_ahead_log();
      // A commit appends to the log without waiting for the disk: it survives
      // the process being killed (not a power cut). Checkpoints, which do wait,
      // run every 16 MiB of log rather than SQLite's 4 MiB.
      db_->execute("PRAGMA synchronous = NORMAL");
      db_->execute("PRAGMA wal_autocheckpoint = 4096");
      db_->execute("PRAGMA journal_size_limit = 67108864");
      db_->execute("PRAGMA foreign_keys = ON");
    }
  }

  [[nodiscard]] const std::filesystem::path& path() const { return db_->path(); }
  [[nodiscard]] const database& db() const { return *db_; }
  std::mutex& mutex() const { return mutex_; }

  template <typename Body>
  auto retry(Body&& body) const {
    return retrying(db_->path(), std::forward<Body>(body));
  }

  statement& prepared(const char* sql) const {
    auto found = statements_.find(sql);
    if (found == statements_.end()) found = statements_.emplace(sql, std::make_unique<statement>(*db_, sql)).first;
    return *found->second;
  }

  [[nodiscard]] int schema_revision() const { return schema_revision_; }

  void require_writable() const {
    if (access_ != store_access::read_write)
      throw invalid_argument("results store " + quoted(path()) + " was opened read-only");
  }

  /// The problem id of `key`, if the store has it.
  std::optional<std::int64_t> find_problem(const store_key& key) const {
    statement_use query(prepared(
        "SELECT p.id FROM problems p JOIN devices d ON d.id = p.device_id JOIN kernels k ON k.id = p.kernel_id "
        "WHERE d.name = ?1 AND d.architecture = ?2 AND d.driver = ?3 AND k.name = ?4 AND k.source_hash = ?5 "
        "AND p.problem_size = ?6"));
    query->bind(1, key.device.name).bind(2, key.device.architecture).bind(3, key.device.driver);
    query->bind(4, key.kernel.name).bind(5, key.kernel.source_hash).bind(6, key.problem_size);
    if (!query->step()) return std::nullopt;
    return query->integer(0);
  }

  /// The problem id of `key`, created with `objective` when missing; inside a write transaction.
  std::int64_t ensure_problem(const store_key& key, std::string_view objective) {
    if (auto existing = find_problem(key)) return *existing;
    {
      statement_use insert(prepared("INSERT OR IGNORE INTO devices (name, architecture, driver) VALUES (?1, ?2, ?3)"));
      insert->bind(1, key.device.name).bind(2, key.device.architecture).bind(3, key.device.driver).run();
    }
    {
      statement_use insert(prepared("INSERT OR IGNORE INTO kernels (name, source_hash) VALUES (?1, ?2)"));
      insert->bind(1, key.kernel.name).bind(2, key.kernel.source_hash).run();
    }
    statement_use insert(prepared(
        "INSERT INTO problems (device_id, kernel_id, problem_size, objective, created_at) VALUES ("
        "(SELECT id FROM devices WHERE name = ?1 AND architecture = ?2 AND driver = ?3), "
        "(SELECT id FROM kernels WHERE name = ?4 AND source_hash = ?5), ?6, ?7, ?8)"));
    insert->bind(1, key.device.name).bind(2, key.device.architecture).bind(3, key.device.driver);
    insert->bind(4, key.kernel.name).bind(5, key.kernel.source_hash).bind(6, key.problem_size);
    insert->bind(7, objective).bind(8, utc_now_text()).run();
    return sqlite3_last_insert_rowid(db_->handle());
  }

  /// Adds parameters and values not yet listed for a problem; inside a write transaction.
  void merge_parameters(std::int64_t problem, const ordered_json& incoming) {
    ordered_json known;
    {
      statement_use query(prepared("SELECT parameters FROM problems WHERE id = ?1"));
      query->bind(1, problem);
      if (!query->step()) throw error("results store " + quoted(path()) + " lost a problem it just created");
      known = parse_json<ordered_json>(query->text(0), "problem parameters");
    }
    bool changed = false;
    for (const auto& parameter : incoming) {
      const auto& name = parameter.at("name");
      auto slot = std::find_if(known.begin(), known.end(), [&](const ordered_json& each) { return each.at("name") == name; });
      if (slot == known.end()) {
        known.push_back(parameter);
        changed = true;
        continue;
      }
      std::set<std::string> texts;
      for (const auto& value : slot->at("values")) texts.insert(python_key_text(value));
      for (const auto& value : parameter.at("values"))
        if (texts.insert(python_key_text(value)).second) {
          (*slot)["values"].push_back(value);
          changed = true;
        }
    }
    if (!changed) return;
    statement_use update(prepared("UPDATE problems SET parameters = ?1 WHERE id = ?2"));
    update->bind(1, dump(known)).bind(2, problem).run();
  }

  /// Keeps the first document header a format's import brought; inside a write transaction.
  void remember_header(std::int64_t problem, const char* format, const ordered_json& header) {
    ordered_json formats;
    {
      statement_use query(prepared("SELECT formats FROM problems WHERE id = ?1"));
      query->bind(1, problem);
      if (!query->step()) throw error("results store " + quoted(path()) + " lost a problem it just created");
      formats = parse_json<ordered_json>(query->text(0), "problem formats");
    }
    if (formats.contains(format)) return;
    formats[format] = header;
    statement_use update(prepared("UPDATE problems SET formats = ?1 WHERE id = ?2"));
    update->bind(1, dump(formats)).bind(2, problem).run();
  }

  /// Inserts one row; false when the configuration had a result and `conflict` kept it.
  bool insert(std::int64_t problem, const std::string& key_text, const std::string& configuration,
              const stored_result& result, on_conflict conflict) {
    static constexpr const char* keep_sql =
        "INSERT INTO results (problem_id, configuration_key, configuration, status, value, samples, measurements, "
        "telemetry, cost, compile_time, verification_time, benchmark_time, strategy_time, framework_time, "
        "measured_at, recorded_at, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
        "?15, ?16, ?17) ON CONFLICT (problem_id, configuration_key) DO NOTHING";
    static constexpr const char* replace_sql =
        "INSERT INTO results (problem_id, configuration_key, configuration, status, value, samples, measurements, "
        "telemetry, cost, compile_time, verification_time, benchmark_time, strategy_time, framework_time, "
        "measured_at, recorded_at, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
        "?15, ?16, ?17) ON CONFLICT (problem_id, configuration_key) DO UPDATE SET configuration = excluded.configuration, "
        "status = excluded.status, value = excluded.value, samples = excluded.samples, "
        "measurements = excluded.measurements, telemetry = excluded.telemetry, cost = excluded.cost, "
        "compile_time = excluded.compile_time, verification_time = excluded.verification_time, "
        "benchmark_time = excluded.benchmark_time, strategy_time = excluded.strategy_time, "
        "framework_time = excluded.framework_time, measured_at = excluded.measured_at, "
        "recorded_at = excluded.recorded_at, extra = excluded.extra";
    statement_use insert(prepared(conflict == on_conflict::keep_existing ? keep_sql : replace_sql));
    insert->bind(1, problem).bind(2, key_text).bind(3, configuration).bind(4, to_string(result.status));
    insert->bind(5, result.status == evaluation_status::ok ? result.value : not_a_number);
    insert->bind(6, samples_json(result.samples)).bind(7, measurements_json(result.measurements));
    insert->bind(8, result.telemetry.empty() ? std::string("{}") : result.telemetry);
    insert->bind(9, result.cost).bind(10, result.compile_time).bind(11, result.verification_time);
    insert->bind(12, result.benchmark_time).bind(13, result.strategy_time).bind(14, result.framework_time);
    insert->bind(15, result.measured_at).bind(16, utc_now_text());
    insert->bind(17, result.extra.empty() ? std::string("{}") : result.extra);
    insert->run();
    return sqlite3_changes(db_->handle()) > 0;
  }

  static stored_row read_row(statement& query, int first) {
    stored_row row;
    row.configuration = query.text(first);
    stored_result& result = row.result;
    result.configuration = configuration_from_json(parse_json<ordered_json>(row.configuration, "a configuration"));
    const std::string status = query.text(first + 1);
    const auto parsed = parse_evaluation_status(status);
    if (!parsed) throw error("results store holds a result with unknown status '" + status + "'");
    result.status = *parsed;
    result.value = query.real(first + 2);
    result.samples = samples_from_json(query.text(first + 3));
    result.measurements = measurements_from_json(query.text(first + 4));
    result.telemetry = query.text(first + 5);
    result.cost = query.optional_real(first + 6);
    result.compile_time = query.optional_real(first + 7);
    result.verification_time = query.optional_real(first + 8);
    result.benchmark_time = query.optional_real(first + 9);
    result.strategy_time = query.optional_real(first + 10);
    result.framework_time = query.optional_real(first + 11);
    result.measured_at = query.text(first + 12);
    result.recorded_at = query.text(first + 13);
    result.extra = query.text(first + 14);
    return row;
  }

  std::vector<stored_row> rows(std::int64_t problem) const {
    static const std::string sql =
        std::string("SELECT ") + result_columns + " FROM results WHERE problem_id = ?1 ORDER BY id";
    statement_use query(prepared(sql.c_str()));
    query->bind(1, problem);
    std::vector<stored_row> all;
    while (query->step()) all.push_back(read_row(query.get(), 0));
    return all;
  }

 private:
  // Looks at the first bytes before SQLite does: a file that is plainly not
  // SQLite, or SQLite of another application, is refused without opening it.
  static void refuse_foreign_bytes(const std::filesystem::path& path, store_access access) {
    std::error_code failure;
    const auto status = std::filesystem::status(path, failure);
    if (!std::filesystem::exists(status)) {
      if (access == store_access::read_only) throw invalid_argument("no results store at " + quoted(path));
      const auto parent = path.parent_path();
      if (!parent.empty()) {
        std::filesystem::create_directories(parent, failure);
        if (failure)
          throw invalid_argument("cannot create the directory of results store " + quoted(path) + ": " +
                                 failure.message());
      }
      return;
    }
    if (!std::filesystem::is_regular_file(status))
      throw invalid_argument(quoted(path) + " is not a regular file, so not a tunekit results store");
    std::ifstream file(path, std::ios::binary);
    if (!file) throw invalid_argument("cannot read results store " + quoted(path));
    std::array<unsigned char, 100> header{};
    file.read(reinterpret_cast<char*>(header.data()), static_cast<std::streamsize>(header.size()));
    const auto size = static_cast<std::size_t>(file.gcount());
    if (size == 0) return;  // an empty file is an empty database
    static constexpr char magic[] = "SQLite format 3";
    if (size < header.size() || std::memcmp(header.data(), magic, sizeof magic) != 0)
      throw invalid_argument(quoted(path) + " is not a tunekit results store (not an SQLite database)");
    const std::uint32_t id = (std::uint32_t{header[68]} << 24) | (std::uint32_t{header[69]} << 16) |
                             (std::uint32_t{header[70]} << 8) | std::uint32_t{header[71]};
    if (id != 0 && id != static_cast<std::uint32_t>(application_id))
      throw invalid_argument(quoted(path) + " is an SQLite database of another application, not a tunekit results store");
  }

  std::int64_t pragma_integer(const char* sql) const {
    statement query(*db_, sql);
    if (!query.step()) throw error("results store " + quoted(path()) + ": " + sql + " returned nothing");
    return query.integer(0);
  }

  // Inside one transaction (a write one when allowed, so two processes
  // creating the same store initialise it once): ours, or empty and made
  // ours, or refused untouched.
  void validate_or_initialise() {
    transaction scope(*db_, access_ == store_access::read_write ? transaction::write : transaction::read);
    const auto id = pragma_integer("PRAGMA application_id");
    const auto version = pragma_integer("PRAGMA user_version");
    const auto objects = pragma_integer("SELECT count(*) FROM sqlite_master");
    if (id == application_id) {
      if (version > schema_version)
        throw invalid_argument("results store " + quoted(path()) + " was written by a newer tunekit (schema " +
                               std::to_string(version) + "; this one reads up to " +
                               std::to_string(schema_version) + ")");
      if (version < 1)
        throw invalid_argument("results store " + quoted(path()) + " has an unknown schema revision " +
                               std::to_string(version));
      // Older revisions are brought up to date when we may write; read-only
      // they are read as they are (what they lack reads as empty).
      if (version < schema_version && access_ == store_access::read_write) {
        if (version < 2) db_->execute(ceilings_sql);
        db_->execute(("PRAGMA user_version = " + std::to_string(schema_version)).c_str());
      }
      schema_revision_ = static_cast<int>(std::min<std::int64_t>(version, schema_version));
      if (access_ == store_access::read_write) schema_revision_ = schema_version;
      scope.commit();
      return;
    }
    if (id != 0 || objects != 0 || version != 0)
      throw invalid_argument(quoted(path()) + " is an SQLite database but not a tunekit results store");
    if (access_ != store_access::read_write)
      throw invalid_argument(quoted(path()) + " is an empty database, not a tunekit results store");
    db_->execute(schema_sql);
    db_->execute(ceilings_sql);
    schema_revision_ = schema_version;
    db_->execute(("PRAGMA application_id = " + std::to_string(application_id)).c_str());
    db_->execute(("PRAGMA user_version = " + std::to_string(schema_version)).c_str());
    scope.commit();
  }

  // WAL lets readers run beside the one writer and makes each commit one
  // append. Switching needs a moment alone with the file: retried while busy.
  void enable_write_ahead_log() {
    retry([&] {
      statement query(*db_, "PRAGMA journal_mode = WAL");
      if (!query.step()) throw error("results store " + quoted(path()) + ": journal_mode returned nothing");
      const std::string mode = query.text(0);
      if (mode != "wal")
        throw error("results store " + quoted(path()) + " cannot use a write-ahead log here (journal mode '" + mode +
                    "'); put it on a local file system");
    });
  }

  store_access access_;
  int schema_revision_ = schema_version;  ///< of the open file; below schema_version only when read-only
  std::unique_ptr<database> db_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<const char*, std::unique_ptr<statement>> statements_;
};

// ---------------------------------------------------------------- identities and configurations

std::string source_hash(std::string_view source, std::string_view compile_options) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  const auto mix = [&hash](std::string_view bytes) {
    for (unsigned char byte : bytes) {
      hash ^= byte;
      hash *= 0x100000001b3ULL;
    }
  };
  mix(source);
  mix(std::string_view("\0", 1));  // so moving text between source and options changes the hash
  mix(compile_options);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::string to_string(const store_key& key) {
  std::string text = "kernel '" + key.kernel.name + "'";
  if (!key.kernel.source_hash.empty()) text += " (source " + key.kernel.source_hash + ")";
  text += " on '" + key.device.name + "'";
  if (!key.device.architecture.empty() || !key.device.driver.empty()) {
    text += " (";
    text += key.device.architecture.empty() ? std::string("?") : key.device.architecture;
    if (!key.device.driver.empty()) text += ", driver " + key.device.driver;
    text += ")";
  }
  if (!key.problem_size.empty()) text += ", problem size " + key.problem_size;
  return text;
}

stored_configuration configuration_of(const search_space& space, std::size_t index) {
  const auto& parameters = space.parameters();
  stored_configuration configuration;
  configuration.reserve(parameters.size());
  for (std::size_t p = 0; p < parameters.size(); ++p)
    configuration.emplace_back(parameters[p].name, parameters[p].values[space.value_index(index, p)]);
  return configuration;
}

std::string configuration_key(const stored_configuration& configuration) {
  json sorted = json::object();
  for (const auto& [name, value] : configuration) {
    if (sorted.contains(name)) throw invalid_argument("configuration names parameter '" + name + "' twice");
    sorted[name] = to_string(value);
  }
  return sorted.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

evaluation_result stored_result::evaluation() const {
  const double charged = cost ? *cost : compile_time.value_or(0.0) + verification_time.value_or(0.0) + benchmark_time.value_or(0.0);
  return evaluation_result{status, status == evaluation_status::ok ? value : 0.0, charged};
}

// ---------------------------------------------------------------- results_store

results_store::results_store(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
results_store::results_store(results_store&&) noexcept = default;
results_store& results_store::operator=(results_store&&) noexcept = default;
results_store::~results_store() = default;

results_store results_store::open(const std::filesystem::path& path, store_access access) {
  return results_store(std::make_unique<impl>(path, access));
}

const std::filesystem::path& results_store::path() const { return impl_->path(); }

namespace {

ordered_json parameters_json(const std::vector<parameter>& parameters) {
  ordered_json list = ordered_json::array();
  for (const auto& each : parameters) {
    ordered_json values = ordered_json::array();
    for (const auto& value : each.values) values.push_back(json_of(value));
    list.push_back({{"name", each.name}, {"values", values}});
  }
  return list;
}

std::vector<parameter> parameters_from_json(const ordered_json& list) {
  std::vector<parameter> parameters;
  for (const auto& each : list) {
    parameter entry{each.at("name").get<std::string>(), {}};
    for (const auto& value : each.at("values")) entry.values.push_back(value_of(value, entry.name));
    parameters.push_back(std::move(entry));
  }
  return parameters;
}

}  // namespace

void results_store::describe(const store_key& key, const std::vector<parameter>& parameters, std::string_view objective) {
  std::lock_guard lock(impl_->mutex());
  impl_->require_writable();
  const ordered_json list = parameters_json(parameters);
  impl_->retry([&] {
    transaction scope(impl_->db(), transaction::write);
    impl_->merge_parameters(impl_->ensure_problem(key, objective), list);
    scope.commit();
  });
}

bool results_store::record(const store_key& key, const stored_result& result, on_conflict conflict) {
  const std::string key_text = configuration_key(result.configuration);
  const std::string configuration = dump(configuration_json(result.configuration));
  stored_result row = result;
  row.telemetry = checked_object_text(result.telemetry, "telemetry");
  row.extra = checked_object_text(result.extra, "extra");
  if (row.measured_at.empty()) row.measured_at = utc_now_text();
  std::lock_guard lock(impl_->mutex());
  impl_->require_writable();
  return impl_->retry([&] {
    transaction scope(impl_->db(), transaction::write);
    const bool written = impl_->insert(impl_->ensure_problem(key, "time"), key_text, configuration, row, conflict);
    scope.commit();
    return written;
  });
}

std::optional<stored_result> results_store::find(const store_key& key, const stored_configuration& configuration) const {
  const std::string key_text = configuration_key(configuration);
  std::lock_guard lock(impl_->mutex());
  return impl_->retry([&]() -> std::optional<stored_result> {
    const auto problem = impl_->find_problem(key);
    if (!problem) return std::nullopt;
    static const std::string sql = std::string("SELECT ") + result_columns +
                                   " FROM results WHERE problem_id = ?1 AND configuration_key = ?2";
    statement_use query(impl_->prepared(sql.c_str()));
    query->bind(1, *problem).bind(2, key_text);
    if (!query->step()) return std::nullopt;
    return impl::read_row(query.get(), 0).result;
  });
}

void results_store::record_ceiling(const device_identity& device, const stored_ceiling& ceiling) {
  if (ceiling.name.empty()) throw invalid_argument("a device ceiling needs a name");
  if (!std::isfinite(ceiling.value) || ceiling.value <= 0.0)
    throw invalid_argument("device ceiling '" + ceiling.name + "' must be a positive number");
  const std::string detail = checked_object_text(ceiling.detail, "ceiling detail");
  const std::string measured_at = ceiling.measured_at.empty() ? utc_now_text() : ceiling.measured_at;
  std::lock_guard lock(impl_->mutex());
  impl_->require_writable();
  impl_->retry([&] {
    transaction scope(impl_->db(), transaction::write);
    {
      statement_use insert(impl_->prepared("INSERT OR IGNORE INTO devices (name, architecture, driver) VALUES (?1, ?2, ?3)"));
      insert->bind(1, device.name).bind(2, device.architecture).bind(3, device.driver).run();
    }
    statement_use insert(impl_->prepared(
        "INSERT OR REPLACE INTO device_ceilings (device_id, name, value, unit, detail, measured_at) VALUES ("
        "(SELECT id FROM devices WHERE name = ?1 AND architecture = ?2 AND driver = ?3), ?4, ?5, ?6, ?7, ?8)"));
    insert->bind(1, device.name).bind(2, device.architecture).bind(3, device.driver);
    insert->bind(4, ceiling.name).bind(5, ceiling.value).bind(6, ceiling.unit).bind(7, detail).bind(8, measured_at);
    insert->run();
    scope.commit();
  });
}

std::vector<stored_ceiling> results_store::ceilings(const device_identity& device) const {
  std::lock_guard lock(impl_->mutex());
  if (impl_->schema_revision() < 2) return {};
  return impl_->retry([&] {
    std::vector<stored_ceiling> all;
    statement_use query(impl_->prepared(
        "SELECT c.name, c.value, c.unit, c.detail, c.measured_at FROM device_ceilings c "
        "JOIN devices d ON d.id = c.device_id WHERE d.name = ?1 AND d.architecture = ?2 AND d.driver = ?3 "
        "ORDER BY c.name"));
    query->bind(1, device.name).bind(2, device.architecture).bind(3, device.driver);
    while (query->step())
      all.push_back({query->text(0), query->real(1), query->text(2), query->text(3), query->text(4)});
    return all;
  });
}

std::vector<stored_result> results_store::results(const store_key& key) const {
  std::lock_guard lock(impl_->mutex());
  return impl_->retry([&] {
    std::vector<stored_result> all;
    transaction scope(impl_->db(), transaction::read);
    if (const auto problem = impl_->find_problem(key))
      for (auto& row : impl_->rows(*problem)) all.push_back(std::move(row.result));
    scope.commit();
    return all;
  });
}

std::optional<stored_result> results_store::best(const store_key& key) const {
  std::lock_guard lock(impl_->mutex());
  return impl_->retry([&]() -> std::optional<stored_result> {
    const auto problem = impl_->find_problem(key);
    if (!problem) return std::nullopt;
    static const std::string sql = std::string("SELECT ") + result_columns +
                                   " FROM results WHERE problem_id = ?1 AND status = 'ok' AND value IS NOT NULL "
                                   "ORDER BY value, id LIMIT 1";
    statement_use query(impl_->prepared(sql.c_str()));
    query->bind(1, *problem);
    if (!query->step()) return std::nullopt;
    return impl::read_row(query.get(), 0).result;
  });
}

std::size_t results_store::count(const store_key& key) const {
  std::lock_guard lock(impl_->mutex());
  return impl_->retry([&]() -> std::size_t {
    const auto problem = impl_->find_problem(key);
    if (!problem) return 0;
    statement_use query(impl_->prepared("SELECT count(*) FROM results WHERE problem_id = ?1"));
    query->bind(1, *problem);
    query->step();
    return static_cast<std::size_t>(query->integer(0));
  });
}

std::size_t results_store::count() const {
  std::lock_guard lock(impl_->mutex());
  return impl_->retry([&]() -> std::size_t {
    statement_use query(impl_->prepared("SELECT count(*) FROM results"));
    query->step();
    return static_cast<std::size_t>(query->integer(0));
  });
}

std::vector<problem_summary> results_store::problems() const {
  std::lock_guard lock(impl_->mutex());
  return impl_->retry([&] {
    std::vector<problem_summary> all;
    transaction scope(impl_->db(), transaction::read);
    statement_use query(impl_->prepared(
        "SELECT p.id, d.name, d.architecture, d.driver, k.name, k.source_hash, p.problem_size, p.objective, "
        "p.parameters, (SELECT count(*) FROM results r WHERE r.problem_id = p.id), "
        "(SELECT count(*) FROM results r WHERE r.problem_id = p.id AND r.status = 'ok'), "
        "(SELECT min(recorded_at) FROM results r WHERE r.problem_id = p.id), "
        "(SELECT max(recorded_at) FROM results r WHERE r.problem_id = p.id) "
        "FROM problems p JOIN devices d ON d.id = p.device_id JOIN kernels k ON k.id = p.kernel_id "
        "ORDER BY k.name COLLATE NOCASE, k.name, d.name, d.architecture, d.driver, k.source_hash, p.problem_size"));
    std::vector<std::int64_t> ids;
    while (query->step()) {
      problem_summary summary;
      ids.push_back(query->integer(0));
      summary.key = {{query->text(1), query->text(2), query->text(3)}, {query->text(4), query->text(5)}, query->text(6)};
      summary.objective = query->text(7);
      summary.parameters = parameters_from_json(parse_json<ordered_json>(query->text(8), "problem parameters"));
      summary.results = static_cast<std::size_t>(query->integer(9));
      summary.ok_results = static_cast<std::size_t>(query->integer(10));
      summary.first_recorded_at = query->text(11);
      summary.last_recorded_at = query->text(12);
      all.push_back(std::move(summary));
    }
    static const std::string best_sql = "SELECT configuration, value FROM results WHERE problem_id = ?1 AND "
                                        "status = 'ok' AND value IS NOT NULL ORDER BY value, id LIMIT 1";
    for (std::size_t i = 0; i < all.size(); ++i) {
      statement_use best(impl_->prepared(best_sql.c_str()));
      best->bind(1, ids[i]);
      if (!best->step()) continue;
      all[i].best_configuration = configuration_from_json(parse_json<ordered_json>(best->text(0), "a configuration"));
      all[i].best_value = best->real(1);
    }
    scope.commit();
    return all;
  });
}

std::vector<tuned_problem> results_store::tuned_problems(std::string_view kernel_name) const {
  std::lock_guard lock(impl_->mutex());
  return impl_->retry([&] {
    std::vector<tuned_problem> all;
    transaction scope(impl_->db(), transaction::read);
    // The best row per problem as the store's best() picks it: smallest value, then first recorded.
    statement_use query(impl_->prepared(
        "SELECT d.name, d.architecture, d.driver, k.name, k.source_hash, p.problem_size, p.objective, "
        "b.configuration, b.value, "
        "(SELECT max(r.recorded_at) FROM results r WHERE r.problem_id = p.id AND r.status = 'ok' AND r.value IS NOT NULL) "
        "FROM problems p JOIN devices d ON d.id = p.device_id JOIN kernels k ON k.id = p.kernel_id "
        "JOIN results b ON b.id = (SELECT r.id FROM results r WHERE r.problem_id = p.id AND r.status = 'ok' AND "
        "r.value IS NOT NULL ORDER BY r.value, r.id LIMIT 1) "
        "WHERE ?1 = '' OR k.name = ?1 "
        "ORDER BY k.name, d.name, d.architecture, d.driver, k.source_hash, p.problem_size"));
    query->bind(1, std::string(kernel_name));  // an empty view may have no data: SQLite would bind NULL
    while (query->step()) {
      tuned_problem tuned;
      tuned.key = {{query->text(0), query->text(1), query->text(2)}, {query->text(3), query->text(4)}, query->text(5)};
      tuned.objective = query->text(6);
      tuned.best_configuration = configuration_from_json(parse_json<ordered_json>(query->text(7), "a configuration"));
      tuned.best_value = query->real(8);
      tuned.last_ok_recorded_at = query->text(9);
      all.push_back(std::move(tuned));
    }
    scope.commit();
    return all;
  });
}

void results_store::check() const {
  std::lock_guard lock(impl_->mutex());
  impl_->retry([&] {
    statement query(impl_->db(), "PRAGMA quick_check");
    std::string problems;
    while (query.step()) {
      const std::string line = query.text(0);
      if (line == "ok") continue;
      if (!problems.empty()) problems += "; ";
      problems += line;
    }
    if (!problems.empty()) throw invalid_argument("results store " + quoted(impl_->path()) + " is corrupt: " + problems);
  });
}

// ---------------------------------------------------------------- location and evaluator

std::filesystem::path default_store_path() {
  const auto variable = [](const char* name) -> std::string {
    const char* value = std::getenv(name);
    return value != nullptr ? std::string(value) : std::string();
  };
  if (auto store = variable("TUNEKIT_STORE"); !store.empty()) return store;
  if (auto data = variable("XDG_DATA_HOME"); !data.empty() && std::filesystem::path(data).is_absolute())
    return std::filesystem::path(data) / "tunekit" / "tunekit.db";
  std::string home = variable("HOME");
  if (home.empty()) {
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    if (getpwuid_r(getuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
        found->pw_dir != nullptr)
      home = found->pw_dir;
  }
  if (home.empty())
    throw invalid_argument("no place for the results store: set TUNEKIT_STORE, XDG_DATA_HOME or HOME, or pass --store");
  return std::filesystem::path(home) / ".local" / "share" / "tunekit" / "tunekit.db";
}

evaluator stored_evaluator(results_store& store, const store_key& key, const search_space& space, evaluator inner) {
  store.describe(key, space.parameters());
  return [&store, key, &space, inner = std::move(inner)](std::size_t index) {
    stored_configuration configuration = configuration_of(space, index);
    if (auto hit = store.find(key, configuration)) return hit->evaluation();
    const evaluation_result measured = inner(index);
    stored_result result;
    result.configuration = std::move(configuration);
    result.status = measured.status;
    result.value = measured.ok() ? measured.value : not_a_number;
    result.cost = measured.cost;
    if (!store.record(key, result))  // another process measured it meanwhile: its result stands
      if (auto other = store.find(key, result.configuration)) return other->evaluation();
    return result.evaluation();
  };
}

// ================================================================ files

namespace {

// ---------------------------------------------------------------- parsing

using cache_records = std::vector<std::pair<std::string, ordered_json>>;

// Builds a document as nlohmann's DOM parser does, except that the members of
// the top-level "cache" object go to a list: an ordered_json object finds a
// key by linear search, so building a cache of n records in place costs n².
class cache_splitting_parser {
 public:
  using number_integer_t = ordered_json::number_integer_t;
  using number_unsigned_t = ordered_json::number_unsigned_t;
  using number_float_t = ordered_json::number_float_t;
  using string_t = ordered_json::string_t;
  using binary_t = ordered_json::binary_t;
  using dom_parser = nlohmann::detail::json_sax_dom_parser<ordered_json>;

  cache_splitting_parser(ordered_json& document, cache_records& records) : outer_(document, true), records_(records) {}

  bool null() { return scalar([](dom_parser& parser) { return parser.null(); }); }
  bool boolean(bool value) { return scalar([value](dom_parser& parser) { return parser.boolean(value); }); }
  bool number_integer(number_integer_t value) {
    return scalar([value](dom_parser& parser) { return parser.number_integer(value); });
  }
  bool number_unsigned(number_unsigned_t value) {
    return scalar([value](dom_parser& parser) { return parser.number_unsigned(value); });
  }
  bool number_float(number_float_t value, const string_t& text) {
    return scalar([value, &text](dom_parser& parser) { return parser.number_float(value, text); });
  }
  bool string(string_t& value) { return scalar([&value](dom_parser& parser) { return parser.string(value); }); }
  bool binary(binary_t& value) { return scalar([&value](dom_parser& parser) { return parser.binary(value); }); }

  bool start_object(std::size_t size) {
    return open([size](dom_parser& parser) { return parser.start_object(size); }, true);
  }
  bool start_array(std::size_t size) {
    return open([size](dom_parser& parser) { return parser.start_array(size); }, false);
  }
  bool end_object() { return close([](dom_parser& parser) { return parser.end_object(); }); }
  bool end_array() { return close([](dom_parser& parser) { return parser.end_array(); }); }

  bool key(string_t& name) {
    if (record_) return record_->key(name);
    if (in_cache_ && depth_ == 2) {
      record_key_ = name;
      return true;
    }
    cache_next_ = depth_ == 1 && name == "cache";
    return outer_.key(name);
  }

  template <typename Exception>
  bool parse_error(std::size_t position, const std::string& token, const Exception& failure) {
    return outer_.parse_error(position, token, failure);
  }

 private:
  template <typename Event>
  bool scalar(Event&& event) {
    if (record_) return event(*record_);
    if (in_cache_ && depth_ == 2) {
      ordered_json value;
      dom_parser single(value, true);
      const bool ok = event(single);
      records_.emplace_back(record_key_, std::move(value));
      return ok;
    }
    cache_next_ = false;
    return event(outer_);
  }

  template <typename Event>
  bool open(Event&& event, bool object) {
    if (record_) {
      ++record_depth_;
      return event(*record_);
    }
    if (in_cache_ && depth_ == 2) {
      record_value_ = ordered_json();
      record_.emplace(record_value_, true);
      record_depth_ = 1;
      return event(*record_);
    }
    ++depth_;
    in_cache_ = cache_next_ && object && depth_ == 2;
    cache_next_ = false;
    return event(outer_);
  }

  template <typename Event>
  bool close(Event&& event) {
    if (record_) {
      const bool ok = event(*record_);
      if (--record_depth_ == 0) {
        records_.emplace_back(record_key_, std::move(record_value_));
        record_.reset();
      }
      return ok;
    }
    if (depth_ == 2) in_cache_ = false;
    --depth_;
    return event(outer_);
  }

  dom_parser outer_;
  cache_records& records_;
  std::optional<dom_parser> record_;
  ordered_json record_value_;
  std::string record_key_;
  int depth_ = 0;
  int record_depth_ = 0;
  bool cache_next_ = false;
  bool in_cache_ = false;
};

// ---------------------------------------------------------------- failure names

// Kernel Tuner knows three failures; tunekit's finer ones fold into the nearest.
const char* kernel_tuner_failure(evaluation_status status) {
  switch (status) {
    case evaluation_status::compile_error: return "CompilationFailedConfig";
    case evaluation_status::resources: return "InvalidConfig";
    default: return "RuntimeFailedConfig";
  }
}

const char* t4_invalidity(evaluation_status status) {
  switch (status) {
    case evaluation_status::ok: return "correct";
    case evaluation_status::compile_error: return "compile";
    case evaluation_status::resources: return "constraints";
    case evaluation_status::timeout: return "timeout";
    case evaluation_status::wrong_result:
    case evaluation_status::invalid_output: return "correctness";
    default: return "runtime";
  }
}

std::optional<evaluation_status> t4_status(const std::string& text) {
  if (text == "correct") return evaluation_status::ok;
  if (text == "compile") return evaluation_status::compile_error;
  if (text == "runtime") return evaluation_status::launch_error;
  if (text == "constraints") return evaluation_status::resources;
  if (text == "timeout") return evaluation_status::timeout;
  if (text == "correctness") return evaluation_status::wrong_result;
  return std::nullopt;
}

// ---------------------------------------------------------------- rendering (shared by import checks and export)

// What a row's `extra` notes for exact files. "floats" lists the quantities
// whose whole values a file wrote as floats ("3.0", not "3"): "samples",
// "compile_time" ... "framework_time", "measurement/NAME". Per format
// ({"kernel_tuner": {...}} or {"t4": {...}}):
//   order:   the file's key order, when it differs from the usual one
//   fields:  members tunekit has no column for, in order
//   key:     a Kernel Tuner cache key that is not the usual text of the values
//   record:  the whole record, when nothing else reproduces it exactly
ordered_json format_notes(const stored_result& result, const char* format) {
  if (result.extra.empty() || result.extra == "{}") return ordered_json::object();
  const auto extra = parse_json<ordered_json>(result.extra, "a result's extra");
  if (!extra.is_object() || !extra.contains(format) || !extra[format].is_object()) return ordered_json::object();
  return extra[format];
}

std::set<std::string> float_fields(const stored_result& result) {
  std::set<std::string> names;
  if (result.extra.empty() || result.extra == "{}") return names;
  const auto extra = parse_json<ordered_json>(result.extra, "a result's extra");
  if (extra.is_object() && extra.contains("floats") && extra["floats"].is_array())
    for (const auto& each : extra["floats"])
      if (each.is_string()) names.insert(each.get<std::string>());
  return names;
}

std::string measurement_field(const std::string& name) { return "measurement/" + name; }

ordered_json reorder(const ordered_json& object, const ordered_json& order) {
  ordered_json arranged = ordered_json::object();
  for (const auto& name : order) {
    const auto& text = name.get_ref<const std::string&>();
    if (object.contains(text)) arranged[text] = object[text];
  }
  for (const auto& [name, value] : object.items())
    if (!arranged.contains(name)) arranged[name] = value;
  return arranged;
}

const measurement* find_measurement(const stored_result& result, std::string_view name) {
  for (const auto& each : result.measurements)
    if (each.name == name) return &each;
  return nullptr;
}

ordered_json samples_array(const std::vector<double>& samples, bool as_float) {
  ordered_json array = ordered_json::array();
  for (double each : samples) array.push_back(number_json(each, as_float));
  return array;
}

// A measured value, or for a failed result the failure's Kernel Tuner name.
ordered_json measured_value(double value, evaluation_status status, bool as_float) {
  if (std::isnan(value)) return status == evaluation_status::ok ? ordered_json(nullptr) : ordered_json(kernel_tuner_failure(status));
  return number_json(value, as_float);
}

ordered_json telemetry_object(const stored_result& result) {
  if (result.telemetry.empty() || result.telemetry == "{}") return ordered_json::object();
  auto telemetry = parse_json<ordered_json>(result.telemetry, "a result's telemetry");
  return telemetry.is_object() ? telemetry : ordered_json::object();
}

// One Kernel Tuner cache record, in the order Kernel Tuner writes its fields.
ordered_json kernel_tuner_record(const stored_row& row, const std::vector<std::string>& names, const std::string& objective) {
  const stored_result& result = row.result;
  const ordered_json notes = format_notes(result, kernel_tuner_tag);
  if (notes.contains("record")) return notes["record"];
  const auto floats = float_fields(result);
  const auto as_float = [&floats](const std::string& name) { return floats.count(name) != 0; };
  const auto configuration = parse_json<ordered_json>(row.configuration, "a configuration");

  ordered_json record = ordered_json::object();
  for (const auto& name : names) {
    if (!configuration.contains(name))
      throw invalid_argument("a result's configuration lacks parameter '" + name + "', so it has no Kernel Tuner cache key");
    record[name] = configuration[name];
  }
  const auto objective_value = [&] {
    return result.status == evaluation_status::ok ? number_json(result.value, as_float(measurement_field(objective)))
                                                  : ordered_json(kernel_tuner_failure(result.status));
  };
  if (const auto* time = find_measurement(result, "time"))
    record["time"] = measured_value(time->value, result.status, as_float(measurement_field("time")));
  else if (objective == "time")
    record["time"] = objective_value();
  if (!result.samples.empty()) record["times"] = samples_array(result.samples, as_float("samples"));
  const auto add_time = [&](const char* name, const std::optional<double>& value) {
    if (value) record[name] = number_json(*value, as_float(name));
  };
  add_time("compile_time", result.compile_time);
  add_time("verification_time", result.verification_time);
  add_time("benchmark_time", result.benchmark_time);
  for (const auto& each : result.measurements)
    if (each.name != "time")
      record[each.name] = measured_value(each.value, result.status, as_float(measurement_field(each.name)));
  if (objective != "time" && find_measurement(result, objective) == nullptr) record[objective] = objective_value();
  if (notes.contains("fields"))
    for (const auto& [name, value] : notes["fields"].items()) record[name] = value;
  // What a T4 file measured beyond numbers is a field to Kernel Tuner.
  const ordered_json t4_notes = format_notes(result, t4_tag);
  if (t4_notes.contains("other_measurements"))
    for (const auto& each : t4_notes["other_measurements"]) {
      const auto& measured = each.at("measurement");
      if (measured.is_object() && measured.contains("name") && measured["name"].is_string() && measured.contains("value") &&
          !record.contains(measured["name"].get<std::string>()))
        record[measured["name"].get<std::string>()] = measured["value"];
    }
  const ordered_json telemetry = telemetry_object(result);
  for (const auto& [name, value] : telemetry.items())
    if (!record.contains(name)) record[name] = value;
  add_time("strategy_time", result.strategy_time);
  add_time("framework_time", result.framework_time);
  if (!result.measured_at.empty()) record["timestamp"] = result.measured_at;
  if (notes.contains("order")) return reorder(record, notes["order"]);
  return record;
}

std::string kernel_tuner_key(const stored_row& row, const std::vector<std::string>& names) {
  const ordered_json notes = format_notes(row.result, kernel_tuner_tag);
  if (notes.contains("key")) return notes["key"].get<std::string>();
  const auto configuration = parse_json<ordered_json>(row.configuration, "a configuration");
  std::string key;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) key += ',';
    if (!configuration.contains(names[i]))
      throw invalid_argument("a result's configuration lacks parameter '" + names[i] + "', so it has no Kernel Tuner cache key");
    key += python_key_text(configuration[names[i]]);
  }
  return key;
}

// One T4 result, in the order Kernel Tuner's T4 writer puts its members.
ordered_json t4_result(const stored_row& row, const std::string& objective) {
  const stored_result& result = row.result;
  const ordered_json notes = format_notes(result, t4_tag);
  if (notes.contains("record")) return notes["record"];
  const auto floats = float_fields(result);
  const auto as_float = [&floats](const std::string& name) { return floats.count(name) != 0; };

  ordered_json out = ordered_json::object();
  if (!result.measured_at.empty()) out["timestamp"] = result.measured_at;
  out["configuration"] = parse_json<ordered_json>(row.configuration, "a configuration");
  ordered_json times = ordered_json::object();
  const auto add_time = [&](const char* name, const char* field, const std::optional<double>& value) {
    if (value) times[name] = number_json(*value, as_float(field));
  };
  add_time("compilation", "compile_time", result.compile_time);
  add_time("benchmark", "benchmark_time", result.benchmark_time);
  add_time("framework", "framework_time", result.framework_time);
  add_time("search_algorithm", "strategy_time", result.strategy_time);
  add_time("validation", "verification_time", result.verification_time);
  if (!result.samples.empty()) times["runtimes"] = samples_array(result.samples, as_float("samples"));
  if (notes.contains("times"))
    for (const auto& [name, value] : notes["times"].items()) times[name] = value;
  out["times"] = times;
  out["invalidity"] = t4_invalidity(result.status);
  out["correctness"] = notes.contains("correctness") ? notes["correctness"] : ordered_json(1);

  ordered_json measurements = ordered_json::array();
  const auto unit_of = [](const std::string& name) { return name.rfind("time", 0) == 0 ? "ms" : ""; };
  for (const auto& each : result.measurements)
    measurements.push_back({{"name", each.name},
                            {"value", measured_value(each.value, result.status, as_float(measurement_field(each.name)))},
                            {"unit", each.unit}});
  if (result.measurements.empty()) {
    const ordered_json value = result.status == evaluation_status::ok
                                   ? number_json(result.value, as_float(measurement_field(objective)))
                                   : ordered_json(kernel_tuner_failure(result.status));
    measurements.push_back({{"name", objective}, {"value", value}, {"unit", unit_of(objective)}});
  }
  // Fields a Kernel Tuner record carried beyond tunekit's columns, and
  // telemetry, are measurements to T4, as Kernel Tuner's own writer has them.
  const ordered_json kernel_tuner_notes = format_notes(result, kernel_tuner_tag);
  if (kernel_tuner_notes.contains("fields"))
    for (const auto& [name, value] : kernel_tuner_notes["fields"].items())
      measurements.push_back({{"name", name}, {"value", value}, {"unit", unit_of(name)}});
  const ordered_json telemetry = telemetry_object(result);
  for (const auto& [name, value] : telemetry.items())
    measurements.push_back({{"name", name}, {"value", value}, {"unit", ""}});
  if (notes.contains("other_measurements"))
    for (const auto& each : notes["other_measurements"]) {
      const auto at = std::min<std::size_t>(each.at("at").get<std::size_t>(), measurements.size());
      measurements.insert(measurements.begin() + static_cast<std::ptrdiff_t>(at), each.at("measurement"));
    }
  out["measurements"] = measurements;
  out["objectives"] = notes.contains("objectives") ? notes["objectives"] : ordered_json::array({objective});
  if (notes.contains("fields"))
    for (const auto& [name, value] : notes["fields"].items()) out[name] = value;
  if (notes.contains("order")) return reorder(out, notes["order"]);
  return out;
}

// ---------------------------------------------------------------- reading files

struct file_row {
  std::string key;  ///< configuration_key()
  stored_row row;
};

// Makes `row` reproduce `original` exactly: as rendered, or with the file's
// key order noted, or, when nothing else does, with the original kept whole.
template <typename Render>
void settle_exactness(stored_row& row, ordered_json& notes, const ordered_json& floats, const ordered_json& original,
                      const char* format, Render&& render) {
  const auto with_notes = [&] {
    ordered_json extra = ordered_json::object();
    if (!floats.empty()) extra["floats"] = floats;
    if (!notes.empty()) extra[format] = notes;
    row.result.extra = dump(extra);
  };
  with_notes();
  const std::string wanted = python_text(original);
  const ordered_json rendered = render();
  if (python_text(rendered) == wanted) return;
  if (python_text(json(rendered)) == python_text(json(original))) {
    ordered_json order = ordered_json::array();
    for (const auto& [name, value] : original.items()) order.push_back(name);
    notes["order"] = order;
    with_notes();
    if (python_text(render()) == wanted) return;
    notes.erase("order");
  }
  notes = ordered_json::object();
  notes["record"] = original;
  with_notes();
}

struct parsed_header {
  store_key key;
  std::string objective = "time";
  ordered_json parameters = ordered_json::array();  // [{"name", "values"}]
  ordered_json header;                              // the document without its results
};

std::optional<double>* kernel_tuner_time_slot(stored_result& result, const std::string& name) {
  if (name == "compile_time") return &result.compile_time;
  if (name == "verification_time") return &result.verification_time;
  if (name == "benchmark_time") return &result.benchmark_time;
  if (name == "strategy_time") return &result.strategy_time;
  if (name == "framework_time") return &result.framework_time;
  return nullptr;
}

std::string unit_for(const std::string& name) { return name.rfind("time", 0) == 0 ? "ms" : ""; }

file_row kernel_tuner_row(const std::string& cache_key, const ordered_json& record, const std::vector<std::string>& names,
                          const std::vector<std::map<std::string, ordered_json>>& values_by_text,
                          const std::string& objective, const std::string& where) {
  if (!record.is_object()) throw invalid_argument(where + ": cache entry '" + cache_key + "' is not an object");
  file_row out;
  stored_result& result = out.row.result;

  // The configuration: from the record's own fields, else from the key's texts.
  ordered_json configuration = ordered_json::object();
  bool from_fields = std::all_of(names.begin(), names.end(), [&](const std::string& name) { return record.contains(name); });
  if (from_fields) {
    for (const auto& name : names) configuration[name] = record[name];
  } else {
    std::size_t start = 0;
    for (std::size_t p = 0; p < names.size(); ++p) {
      const std::size_t comma = p + 1 < names.size() ? cache_key.find(',', start) : std::string::npos;
      if (p + 1 < names.size() && comma == std::string::npos)
        throw invalid_argument(where + ": cache key '" + cache_key + "' has too few values");
      const std::string text = cache_key.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      const auto found = values_by_text[p].find(text);
      if (found == values_by_text[p].end())
        throw invalid_argument(where + ": cache key '" + cache_key + "' has value '" + text + "' not listed for '" +
                               names[p] + "'");
      configuration[names[p]] = found->second;
      start = comma + 1;
    }
  }
  try {
    result.configuration = configuration_from_json(configuration);
  } catch (const invalid_argument& failure) {
    throw invalid_argument(where + ": cache entry '" + cache_key + "': " + failure.what());
  }
  out.row.configuration = dump(configuration);
  out.key = configuration_key(result.configuration);

  const auto failure_in = [&](const char* field) -> std::optional<evaluation_status> {
    const auto found = record.find(field);
    if (found == record.end() || !found->is_string()) return std::nullopt;
    if (auto status = detail::kernel_tuner_status(found->get<std::string>())) return status;
    throw invalid_argument(where + ": cache entry '" + cache_key + "' has an unknown failure '" +
                           found->get<std::string>() + "'");
  };
  if (auto status = failure_in("time")) result.status = *status;
  else if (auto failed = failure_in(objective.c_str())) result.status = *failed;
  if (!record.contains("time") && !record.contains(objective))
    throw invalid_argument(where + ": cache entry '" + cache_key + "' has no time");
  const auto objective_field = record.find(objective);
  result.value = objective_field != record.end() && objective_field->is_number() ? objective_field->get<double>()
                                                                                 : not_a_number;

  ordered_json notes = ordered_json::object();
  ordered_json floats = ordered_json::array();
  ordered_json fields = ordered_json::object();
  const std::set<std::string> parameter_names(names.begin(), names.end());
  for (const auto& [name, value] : record.items()) {
    if (parameter_names.count(name) != 0) continue;
    if (name == "times" && value.is_array() &&
        std::all_of(value.begin(), value.end(), [](const ordered_json& each) { return each.is_number(); })) {
      for (const auto& sample : value) result.samples.push_back(sample.get<double>());
      if (std::any_of(value.begin(), value.end(), is_whole_float)) floats.push_back("samples");
      continue;
    }
    if (name == "timestamp" && value.is_string()) {
      result.measured_at = value.get<std::string>();
      continue;
    }
    if (auto* slot = kernel_tuner_time_slot(result, name); slot != nullptr && value.is_number()) {
      *slot = value.get<double>();
      if (is_whole_float(value)) floats.push_back(name);
      continue;
    }
    if (value.is_number()) {
      result.measurements.push_back({name, value.get<double>(), unit_for(name)});
      if (is_whole_float(value)) floats.push_back(measurement_field(name));
      continue;
    }
    if (value.is_string() && result.status != evaluation_status::ok && detail::kernel_tuner_status(value.get<std::string>())) {
      result.measurements.push_back({name, not_a_number, unit_for(name)});
      continue;
    }
    fields[name] = value;
  }
  if (!fields.empty()) notes["fields"] = fields;

  std::string derived_key;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) derived_key += ',';
    derived_key += python_key_text(configuration[names[i]]);
  }
  if (derived_key != cache_key) notes["key"] = cache_key;
  settle_exactness(out.row, notes, floats, record, kernel_tuner_tag,
                   [&] { return kernel_tuner_record(out.row, names, objective); });
  if (notes.contains("record") && derived_key != cache_key) {
    notes["key"] = cache_key;
    auto extra = parse_json<ordered_json>(out.row.result.extra, "a result's extra");
    extra[kernel_tuner_tag] = notes;
    out.row.result.extra = dump(extra);
  }
  return out;
}

struct file_contents {
  results_format format = results_format::kernel_tuner;
  parsed_header header;
  std::vector<file_row> rows;
};

file_contents read_kernel_tuner(const ordered_json& document, const cache_records& cache, const import_identity& identity,
                                const std::string& where) {
  file_contents contents;
  contents.format = results_format::kernel_tuner;
  const auto& tune_params = document["tune_params"];
  std::vector<std::string> names;
  try {
    if (document.contains("tune_params_keys")) {
      for (const auto& key : document["tune_params_keys"]) names.push_back(key.get<std::string>());
    } else {
      for (const auto& [key, values] : tune_params.items()) names.push_back(key);
    }
  } catch (const nlohmann::json::exception&) {
    throw invalid_argument(where + ": tune_params_keys is not a list of names");
  }
  if (names.empty()) throw invalid_argument(where + " lists no tunable parameters");
  std::vector<std::map<std::string, ordered_json>> values_by_text;
  for (const auto& name : names) {
    if (!tune_params.contains(name) || !tune_params[name].is_array() || tune_params[name].empty())
      throw invalid_argument(where + ": parameter '" + name + "' has no values in tune_params");
    std::map<std::string, ordered_json> texts;
    ordered_json values = ordered_json::array();
    for (const auto& value : tune_params[name]) {
      (void)value_of(value, name);  // a value tunekit cannot hold is refused here
      texts.emplace(python_key_text(value), value);
      values.push_back(value);
    }
    values_by_text.push_back(std::move(texts));
    contents.header.parameters.push_back({{"name", name}, {"values", values}});
  }
  if (document.contains("objective") && !document["objective"].is_string())
    throw invalid_argument(where + ": objective is not a name");
  contents.header.objective = document.value("objective", std::string("time"));

  auto& key = contents.header.key;
  const auto text_field = [&](const char* name) -> std::string {
    if (!document.contains(name)) return {};
    if (!document[name].is_string()) throw invalid_argument(where + ": " + name + " is not text");
    return document[name].get<std::string>();
  };
  key.device.name = identity.device_name.value_or(text_field("device_name"));
  key.kernel.name = identity.kernel_name.value_or(text_field("kernel_name"));
  key.device.architecture = identity.architecture.value_or("");
  key.device.driver = identity.driver.value_or("");
  key.kernel.source_hash = identity.source_hash.value_or("");
  key.problem_size = identity.problem_size.value_or(document.contains("problem_size") ? dump(document["problem_size"]) : "");
  if (key.kernel.name.empty()) throw invalid_argument(where + " names no kernel: give one (--kernel)");

  // The header, with a placeholder where the cache goes.
  for (const auto& [name, value] : document.items()) contents.header.header[name] = name == "cache" ? ordered_json(nullptr) : value;

  std::set<std::string> seen;
  for (const auto& [cache_key, record] : cache) {
    file_row row = kernel_tuner_row(cache_key, record, names, values_by_text, contents.header.objective, where);
    if (!seen.insert(row.key).second)
      throw invalid_argument(where + " records configuration '" + cache_key + "' twice");
    contents.rows.push_back(std::move(row));
  }
  return contents;
}

file_row t4_row(const ordered_json& record, std::size_t index, const std::string& objective, const std::string& where) {
  const std::string at = where + ": result " + std::to_string(index);
  if (!record.is_object()) throw invalid_argument(at + " is not an object");
  for (const char* required : {"configuration", "times", "invalidity", "correctness"})
    if (!record.contains(required)) throw invalid_argument(at + " lacks '" + required + "', which T4 requires");
  if (!record["configuration"].is_object()) throw invalid_argument(at + ": configuration is not an object");
  if (!record["times"].is_object()) throw invalid_argument(at + ": times is not an object");
  if (!record["correctness"].is_number()) throw invalid_argument(at + ": correctness is not a number");
  if (!record["invalidity"].is_string() || !t4_status(record["invalidity"].get<std::string>()))
    throw invalid_argument(at + ": invalidity is not one of timeout, compile, runtime, correctness, constraints, correct");

  file_row out;
  stored_result& result = out.row.result;
  try {
    result.configuration = configuration_from_json(record["configuration"]);
  } catch (const invalid_argument& failure) {
    throw invalid_argument(at + ": " + failure.what());
  }
  out.row.configuration = dump(record["configuration"]);
  out.key = configuration_key(result.configuration);
  result.status = *t4_status(record["invalidity"].get<std::string>());

  ordered_json notes = ordered_json::object();
  ordered_json floats = ordered_json::array();
  ordered_json fields = ordered_json::object();
  for (const auto& [name, value] : record.items()) {
    if (name == "configuration" || name == "invalidity") continue;
    if (name == "timestamp" && value.is_string()) {
      result.measured_at = value.get<std::string>();
      continue;
    }
    if (name == "correctness") {
      if (value != ordered_json(1) || !value.is_number_integer()) notes["correctness"] = value;
      continue;
    }
    if (name == "objectives") {
      if (value != ordered_json::array({objective})) notes["objectives"] = value;
      continue;
    }
    if (name == "times") {
      ordered_json other = ordered_json::object();
      for (const auto& [time_name, time_value] : value.items()) {
        std::optional<double>* slot = nullptr;
        const char* field = nullptr;
        if (time_name == "compilation") { slot = &result.compile_time; field = "compile_time"; }
        if (time_name == "benchmark") { slot = &result.benchmark_time; field = "benchmark_time"; }
        if (time_name == "framework") { slot = &result.framework_time; field = "framework_time"; }
        if (time_name == "search_algorithm") { slot = &result.strategy_time; field = "strategy_time"; }
        if (time_name == "validation") { slot = &result.verification_time; field = "verification_time"; }
        if (slot != nullptr && time_value.is_number()) {
          *slot = time_value.get<double>();
          if (is_whole_float(time_value)) floats.push_back(field);
        } else if (time_name == "runtimes" && time_value.is_array() &&
                   std::all_of(time_value.begin(), time_value.end(), [](const ordered_json& each) { return each.is_number(); })) {
          for (const auto& sample : time_value) result.samples.push_back(sample.get<double>());
          if (std::any_of(time_value.begin(), time_value.end(), is_whole_float)) floats.push_back("samples");
        } else {
          other[time_name] = time_value;
        }
      }
      if (!other.empty()) notes["times"] = other;
      continue;
    }
    if (name == "measurements" && value.is_array()) {
      ordered_json others = ordered_json::array();
      std::size_t position = 0;
      for (const auto& each : value) {
        const bool plain = each.is_object() && each.size() == 3 && each.contains("name") && each["name"].is_string() &&
                           each.contains("value") && each.contains("unit") && each["unit"].is_string();
        const auto& measured = plain ? each["value"] : each;
        if (plain && measured.is_number()) {
          result.measurements.push_back({each["name"].get<std::string>(), measured.get<double>(), each["unit"].get<std::string>()});
          if (is_whole_float(measured)) floats.push_back(measurement_field(each["name"].get<std::string>()));
        } else if (plain && measured.is_string() && result.status != evaluation_status::ok &&
                   detail::kernel_tuner_status(measured.get<std::string>())) {
          result.measurements.push_back({each["name"].get<std::string>(), not_a_number, each["unit"].get<std::string>()});
        } else {
          others.push_back({{"at", position}, {"measurement", each}});
        }
        ++position;
      }
      if (!others.empty()) notes["other_measurements"] = others;
      continue;
    }
    fields[name] = value;
  }
  if (!fields.empty()) notes["fields"] = fields;
  if (const auto* objective_measurement = find_measurement(result, objective))
    result.value = objective_measurement->value;
  else
    result.value = not_a_number;
  settle_exactness(out.row, notes, floats, record, t4_tag, [&] { return t4_result(out.row, objective); });
  return out;
}

file_contents read_t4(const ordered_json& document, const import_identity& identity, const std::string& where) {
  file_contents contents;
  contents.format = results_format::t4;
  if (!identity.kernel_name || identity.kernel_name->empty() || !identity.device_name || identity.device_name->empty())
    throw invalid_argument(where + " is a T4 results file, which names no kernel or device: give --kernel and --device");
  if (document.contains("schema_version") && !document["schema_version"].is_string())
    throw invalid_argument(where + ": schema_version is not text");
  auto& key = contents.header.key;
  key.device = {*identity.device_name, identity.architecture.value_or(""), identity.driver.value_or("")};
  key.kernel = {*identity.kernel_name, identity.source_hash.value_or("")};
  key.problem_size = identity.problem_size.value_or("");

  const auto& results = document["results"];
  if (!results.empty() && results[0].is_object() && results[0].contains("objectives") &&
      results[0]["objectives"].is_array() && !results[0]["objectives"].empty() && results[0]["objectives"][0].is_string())
    contents.header.objective = results[0]["objectives"][0].get<std::string>();
  for (const auto& [name, value] : document.items()) contents.header.header[name] = name == "results" ? ordered_json(nullptr) : value;

  // The parameters as the configurations show them, in order of appearance.
  std::vector<std::string> order;
  std::map<std::string, std::pair<ordered_json, std::set<std::string>>> seen_values;
  std::set<std::string> seen;
  std::size_t index = 0;
  for (const auto& record : results) {
    file_row row = t4_row(record, index++, contents.header.objective, where);
    if (!seen.insert(row.key).second)
      throw invalid_argument(where + " records configuration " + row.row.configuration + " twice");
    for (const auto& [name, value] : record["configuration"].items()) {
      auto [slot, added] = seen_values.try_emplace(name, ordered_json::array(), std::set<std::string>{});
      if (added) order.push_back(name);
      if (slot->second.second.insert(python_key_text(value)).second) slot->second.first.push_back(value);
    }
    contents.rows.push_back(std::move(row));
  }
  for (const auto& name : order) contents.header.parameters.push_back({{"name", name}, {"values", seen_values[name].first}});
  return contents;
}

}  // namespace

std::string_view to_string(results_format format) { return format == results_format::t4 ? "t4" : "kt"; }

results_format parse_results_format(std::string_view text) {
  if (text == "kt" || text == "kernel_tuner") return results_format::kernel_tuner;
  if (text == "t4" || text == "T4") return results_format::t4;
  throw invalid_argument("unknown results format '" + std::string(text) + "' (kt or t4)");
}

struct results_file::contents : file_contents {};

results_file::results_file(std::shared_ptr<const contents> data) : contents_(std::move(data)) {}

results_file results_file::read(const std::filesystem::path& path, std::optional<results_format> format,
                                const import_identity& identity) {
  const std::string where = quoted(path);
  const std::string bytes = detail::read_maybe_gzipped(path);
  ordered_json document;
  cache_records cache;
  try {
    cache_splitting_parser parser(document, cache);
    ordered_json::sax_parse(bytes, &parser);
  } catch (const nlohmann::json::exception& failure) {
    throw invalid_argument(where + " is not JSON (" + failure.what() + ")");
  }
  const bool kernel_tuner = document.is_object() && document.contains("tune_params") && document.contains("cache") &&
                            document["tune_params"].is_object() && document["cache"].is_object();
  const bool t4 = document.is_object() && document.contains("results") && document["results"].is_array();
  if (!format) {
    if (kernel_tuner) format = results_format::kernel_tuner;
    else if (t4) format = results_format::t4;
    else throw invalid_argument(where + " is neither a Kernel Tuner cache file nor a T4 results file");
  }
  auto parsed = std::make_shared<contents>();
  if (*format == results_format::kernel_tuner) {
    if (!kernel_tuner) throw invalid_argument(where + " is not a Kernel Tuner cache file (no tune_params and cache objects)");
    static_cast<file_contents&>(*parsed) = read_kernel_tuner(document, cache, identity, where);
  } else {
    if (!t4) throw invalid_argument(where + " is not a T4 results file (no results list)");
    if (!cache.empty()) {  // a member named "cache" is nothing special to T4
      ordered_json members = ordered_json::object();
      for (auto& [name, value] : cache) members[name] = std::move(value);
      document["cache"] = std::move(members);
    }
    static_cast<file_contents&>(*parsed) = read_t4(document, identity, where);
  }
  return results_file(std::move(parsed));
}

results_format results_file::format() const { return contents_->format; }
const store_key& results_file::key() const { return contents_->header.key; }
std::size_t results_file::size() const { return contents_->rows.size(); }

import_summary import_results(results_store& store, const results_file& file) {
  const auto& contents = *file.contents_;
  auto& state = *store.impl_;
  std::lock_guard lock(state.mutex());
  state.require_writable();
  import_summary summary;
  summary.key = contents.header.key;
  summary.format = contents.format;
  summary.results = contents.rows.size();
  state.retry([&] {
    summary.added = summary.already_present = 0;
    transaction scope(state.db(), transaction::write);
    const std::int64_t problem = state.ensure_problem(contents.header.key, contents.header.objective);
    state.merge_parameters(problem, contents.header.parameters);
    state.remember_header(problem, contents.format == results_format::t4 ? t4_tag : kernel_tuner_tag,
                          contents.header.header);
    for (const auto& row : contents.rows) {
      if (state.insert(problem, row.key, row.row.configuration, row.row.result, on_conflict::keep_existing))
        ++summary.added;
      else
        ++summary.already_present;
    }
    scope.commit();
  });
  return summary;
}

// ---------------------------------------------------------------- export

namespace {

std::string export_kernel_tuner(const store_key& key, const std::string& objective, ordered_json parameters,
                                const ordered_json& formats, const std::vector<stored_row>& rows) {
  ordered_json header;
  if (formats.contains(kernel_tuner_tag)) {
    header = formats[kernel_tuner_tag];
  } else {
    header["device_name"] = key.device.name;
    header["kernel_name"] = key.kernel.name;
    ordered_json size = key.problem_size;
    try {
      if (!key.problem_size.empty()) size = ordered_json::parse(key.problem_size);
    } catch (const nlohmann::json::exception&) {
    }
    header["problem_size"] = size;
    ordered_json names = ordered_json::array();
    ordered_json tune_params = ordered_json::object();
    for (const auto& each : parameters) {
      names.push_back(each["name"]);
      tune_params[each["name"].get<std::string>()] = each["values"];
    }
    header["tune_params_keys"] = names;
    header["tune_params"] = tune_params;
    header["objective"] = objective;
    header["cache"] = nullptr;
  }
  std::vector<std::string> names;
  if (header.contains("tune_params_keys")) {
    for (const auto& name : header["tune_params_keys"]) names.push_back(name.get<std::string>());
  } else if (header.contains("tune_params")) {
    for (const auto& [name, values] : header["tune_params"].items()) names.push_back(name);
  }
  // Values recorded since the import that its header does not list yet.
  if (header.contains("tune_params") && header["tune_params"].is_object()) {
    auto& tune_params = header["tune_params"];
    for (const auto& row : rows) {
      const auto configuration = parse_json<ordered_json>(row.configuration, "a configuration");
      for (const auto& name : names) {
        if (!configuration.contains(name) || !tune_params.contains(name)) continue;
        const std::string text = python_key_text(configuration[name]);
        auto& listed = tune_params[name];
        if (std::none_of(listed.begin(), listed.end(), [&](const ordered_json& each) { return python_key_text(each) == text; }))
          listed.push_back(configuration[name]);
      }
    }
  }

  ordered_json cache = ordered_json::object();
  std::vector<std::pair<std::string, ordered_json>> entries;
  entries.reserve(rows.size());
  for (const auto& row : rows) entries.emplace_back(kernel_tuner_key(row, names), kernel_tuner_record(row, names, objective));

  // Kernel Tuner's layout: the header as json.dumps(indent=""), then one
  // record a line, so Kernel Tuner itself can resume from the file.
  const bool cache_last = !header.empty() && header.contains("cache") && std::prev(header.end()).key() == "cache";
  if (!cache_last) {
    for (auto& [cache_key, record] : entries) cache[cache_key] = std::move(record);
    header["cache"] = cache;
    std::string text;
    append_python(text, header, true);
    return text;
  }
  header["cache"] = ordered_json::object();
  std::string text;
  append_python(text, header, true);
  text.resize(text.size() - 3);  // "}\n}": the cache is opened, not closed
  for (const auto& [cache_key, record] : entries) {
    text += '\n';
    append_python_string(text, cache_key);
    text += ": ";
    append_python(text, record, false);
    text += ',';
  }
  if (!entries.empty()) text.pop_back();
  text += "}\n}";
  return text;
}

std::string export_t4(const std::string& objective, const ordered_json& formats, const std::vector<stored_row>& rows) {
  ordered_json document;
  if (formats.contains(t4_tag)) {
    document = formats[t4_tag];
  } else {
    document["results"] = nullptr;
    document["schema_version"] = "1.0.0";
  }
  ordered_json results = ordered_json::array();
  for (const auto& row : rows) results.push_back(t4_result(row, objective));
  document["results"] = std::move(results);
  return python_text(document);
}

}  // namespace

std::string export_results(const results_store& store, const store_key& key, results_format format) {
  const auto& state = *store.impl_;
  std::lock_guard lock(state.mutex());
  return state.retry([&] {
    transaction scope(state.db(), transaction::read);
    const auto problem = state.find_problem(key);
    if (!problem) throw invalid_argument("the results store has no results for " + to_string(key));
    std::string objective;
    ordered_json parameters;
    ordered_json formats;
    {
      statement_use query(state.prepared("SELECT objective, parameters, formats FROM problems WHERE id = ?1"));
      query->bind(1, *problem);
      query->step();
      objective = query->text(0);
      parameters = parse_json<ordered_json>(query->text(1), "problem parameters");
      formats = parse_json<ordered_json>(query->text(2), "problem formats");
    }
    const auto rows = state.rows(*problem);
    scope.commit();
    if (rows.empty()) throw invalid_argument("the results store has no results for " + to_string(key));
    return format == results_format::t4 ? export_t4(objective, formats, rows)
                                        : export_kernel_tuner(key, objective, parameters, formats, rows);
  });
}

void write_results_file(const std::filesystem::path& path, std::string_view text, bool overwrite) {
  std::error_code failure;
  if (std::filesystem::exists(path, failure) && !overwrite)
    throw invalid_argument(quoted(path) + " exists; pass --force to replace it");
  if (std::filesystem::is_directory(path, failure)) throw invalid_argument(quoted(path) + " is a directory");
  const auto directory = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  std::filesystem::create_directories(directory, failure);
  if (failure) throw invalid_argument("cannot create directory " + quoted(directory) + ": " + failure.message());
  static std::atomic<unsigned> counter{0};
  const auto temporary = directory / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                                      std::to_string(counter++));
  const auto remove_temporary = [&] {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
  };
  const bool compress = path.extension() == ".gz";
  if (compress) {
    gzFile file = gzopen(temporary.c_str(), "wb6");
    if (file == nullptr) throw invalid_argument("cannot write " + quoted(temporary) + ": " + std::strerror(errno));
    std::size_t written = 0;
    bool ok = true;
    while (written < text.size()) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(text.size() - written, 1 << 20));
      if (gzwrite(file, text.data() + written, chunk) != static_cast<int>(chunk)) {
        ok = false;
        break;
      }
      written += chunk;
    }
    if (gzclose(file) != Z_OK || !ok) {
      remove_temporary();
      throw error("cannot write " + quoted(temporary));
    }
  } else {
    const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (descriptor < 0) throw invalid_argument("cannot write " + quoted(temporary) + ": " + std::strerror(errno));
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t count = ::write(descriptor, text.data() + written, text.size() - written);
      if (count < 0 && errno == EINTR) continue;
      if (count <= 0) {
        const std::string reason = std::strerror(errno);
        ::close(descriptor);
        remove_temporary();
        throw error("cannot write " + quoted(temporary) + ": " + reason);
      }
      written += static_cast<std::size_t>(count);
    }
    if (::fsync(descriptor) != 0 || ::close(descriptor) != 0) {
      remove_temporary();
      throw error("cannot write " + quoted(temporary) + ": " + std::strerror(errno));
    }
  }
  // link() refuses an existing name atomically; rename() replaces one atomically.
  // Where hard links are not supported, the check above has to do.
  int placed = overwrite ? ::rename(temporary.c_str(), path.c_str()) : ::link(temporary.c_str(), path.c_str());
  int placed_errno = errno;
  if (!overwrite && placed != 0 && (placed_errno == EPERM || placed_errno == EOPNOTSUPP)) {
    if (std::filesystem::exists(path, failure)) {
      placed_errno = EEXIST;
    } else {
      placed = ::rename(temporary.c_str(), path.c_str());
      placed_errno = errno;
    }
  }
  if (!overwrite) remove_temporary();
  if (placed != 0) {
    remove_temporary();
    if (placed_errno == EEXIST) throw invalid_argument(quoted(path) + " exists; pass --force to replace it");
    throw error("cannot write " + quoted(path) + ": " + std::strerror(placed_errno));
  }
}

recorded_space load_recorded_space(const std::filesystem::path& path) {
  std::string kernel_tuner_error;
  try {
    return load_kernel_tuner_cache(path);  // the common case: read once
  } catch (const invalid_argument& error) {
    kernel_tuner_error = error.what();
  }
  import_identity identity;  // a T4 file names no kernel or device
  identity.kernel_name = "replay";
  identity.device_name = "replay";
  std::optional<results_file> read;
  try {
    read.emplace(results_file::read(path, results_format::t4, identity));
  } catch (const invalid_argument& error) {
    throw invalid_argument(kernel_tuner_error + "; nor a T4 results file: " + error.what());
  }
  const results_file& file = *read;
  // T4: through a scratch store into Kernel Tuner's layout, the one replay reads.
  static std::atomic<unsigned> serial{0};
  const auto scratch = std::filesystem::temp_directory_path() /
                       ("tunekit-replay-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
  struct remover {
    std::filesystem::path path;
    ~remover() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } cleanup{scratch};
  std::filesystem::create_directories(scratch);
  std::string text;
  {
    results_store store = results_store::open(scratch / "replay.db");
    (void)import_results(store, file);
    text = export_results(store, file.key(), results_format::kernel_tuner);
  }
  const auto converted = scratch / "replay.json";
  write_results_file(converted, text, false);
  return load_kernel_tuner_cache(converted);
}

}  // namespace tunekit
