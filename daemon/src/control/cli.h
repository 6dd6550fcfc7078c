#pragma once

namespace ingestd::control {

// The `ingestd` command line: run (default), validate, plugins, --version, --help.
// Exit codes: 0 success, 1 runtime failure, 64 usage error, 78 configuration error.
int main(int argc, char** argv);

}  // namespace ingestd::control
