#include "tunekit/measure/stopping.hpp"
