#pragma once
// Internal: child processes for the backends. A command run to its end with
// its output captured, and a body run in a forked child that answers in JSON,
// where a crash, a silent exit or a hang becomes an ending of its own.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tunekit/error.hpp"

namespace tunekit::detail {

/// Runs argv, returns (exit status, combined output); -1 when it could not start.
[[nodiscard]] std::pair<int, std::string> run_command(const std::vector<std::string>& argv);

[[nodiscard]] inline std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

[[nodiscard]] inline double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Runs `body` in a child process that writes its answer (JSON) to a pipe.
// A child killed by a signal, exiting without an answer, or outliving the
// watchdog becomes an outcome of its own.
struct child_answer {
  enum class ending { answered, crashed, silent, timed_out } how = ending::answered;
  nlohmann::json answer;
  std::string detail;
};

template <typename Body>
child_answer run_in_child(double watchdog_seconds, Body&& body) {
  child_answer result;
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) throw error("cannot create a pipe for a child process");
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) throw error("cannot fork a child process");
  if (child == 0) {
    close(pipe_ends[0]);
    std::string text;
    try {
      text = body().dump();
    } catch (const std::exception& problem) {
      text = nlohmann::json{{"status", "launch_error"}, {"message", problem.what()}}.dump();
    }
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = write(pipe_ends[1], text.data() + written, text.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    close(pipe_ends[1]);
    _exit(0);  // no destructors or atexit handlers of the parent's state
  }
  close(pipe_ends[1]);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(watchdog_seconds);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd ready{pipe_ends[0], POLLIN, 0};
    const int polled = poll(&ready, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (polled < 0 && errno != EINTR) break;
    if (polled <= 0) continue;
    char buffer[65536];
    const ssize_t got = read(pipe_ends[0], buffer, sizeof buffer);
    if (got <= 0) break;  // end of file: the child is done or dead
    text.append(buffer, static_cast<std::size_t>(got));
  }
  close(pipe_ends[0]);
  if (timed_out) kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  if (timed_out) {
    result.how = child_answer::ending::timed_out;
    result.detail = "still running after " + std::to_string(watchdog_seconds) + " s";
  } else if (WIFSIGNALED(status)) {
    result.how = child_answer::ending::crashed;
    result.detail = std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  } else if (text.empty()) {
    result.how = child_answer::ending::silent;
    result.detail = "exited with status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + " without an answer";
  } else {
    try {
      result.answer = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
      result.how = child_answer::ending::silent;
      result.detail = "answered something that is not JSON";
    }
  }
  return result;
}

}  // namespace tunekit::detail
