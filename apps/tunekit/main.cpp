#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) { return tunekit::app::run(argc, argv, std::cout, std::cerr); }
