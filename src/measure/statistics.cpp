#include "tunekit/measure/statistics.hpp"
