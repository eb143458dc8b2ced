#pragma once
// Statistics of timing samples: being written.
