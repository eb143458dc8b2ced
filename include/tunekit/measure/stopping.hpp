#pragma once
// Stopping criteria: being written.
