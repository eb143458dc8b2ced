#pragma once
// Results store: placeholder, being written.
