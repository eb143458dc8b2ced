#include "tunekit/store.hpp"
