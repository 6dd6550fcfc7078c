// State files of plugins (checkpoints in Context::state_dir()): written so that a crash leaves the
// old or the new content whole, never a mix, and read back whole.
#pragma once

#include <string>
#include <string_view>

namespace ingestd::plugins {

// Replaces `file` atomically: a temporary file beside it, written and fsync'ed, renamed over it,
// then the directory fsync'ed. False with error set on failure ("cannot write <file> (<step>):
// <reason>"); the old file is then left as it was.
bool replace_file(const std::string& file, std::string_view data, std::string& error);

enum class ReadStatus { kOk, kMissing, kError };
// Reads all of `file` into `data`. kMissing when it does not exist; kError with error set when
// it cannot be read.
ReadStatus read_file(const std::string& file, std::string& data, std::string& error);

// The system's message for an errno value.
std::string error_text(int err);

}  // namespace ingestd::plugins
