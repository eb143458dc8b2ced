#include "tunekit/error.hpp"

// Anchors the exception vtables in the library rather than in every user.
namespace tunekit {}  // namespace tunekit
