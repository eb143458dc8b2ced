#include "tunekit/measure/results.hpp"
