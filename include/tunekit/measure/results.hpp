#pragma once
// Result files and regression comparison: being written.
