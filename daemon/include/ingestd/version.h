#pragma once

#include <cstdint>

namespace ingestd {

// The version of the plugin SDK. A plugin built for another major is refused, and so is one built
// for a newer minor than the daemon's; before 1.0 the minor must match exactly (0.2 changed
// Context::dead_letter() and SinkResult; 0.3 made acks explicit (AckRef in Batch::acks) and gave
// Output try_push() and wait_writable(); 0.4 added Context::state_dir(), Output::close(),
// replayable acks and Origin::end_offset; 0.5 added OptionType::kObjectList and
// OptionValue::get_object_list(); 0.6 added Aggregator::inspect(); 0.7 added Origin::parser, worker
// and workers; 0.8 added side outputs: ComponentDescriptor::side_outputs and
// Context::side_output(), Context::gauges(), kOrderedWrites, and a multi-worker parser's batches
// handed on in order, no longer marked in Origin).
inline constexpr uint32_t kSdkMajor = 0;
inline constexpr uint32_t kSdkMinor = 8;

// Layout version of PluginDescriptor/ComponentDescriptor and of the entry symbol's contract.
inline constexpr uint32_t kAbiVersion = 1;

}  // namespace ingestd
