// Process memory as INFO reports it. With jemalloc (the default build),
// used_memory is what the allocator has handed out (stats.allocated); without
// it (sanitizer builds) it falls back to mallinfo2.
#pragma once

#include <cstddef>
#include <string>

namespace larder {

struct MemoryReport {
  size_t used = 0;       // bytes allocated by the program
  size_t rss = 0;        // resident set size
  size_t allocator_active = 0;
  size_t allocator_resident = 0;
  size_t allocator_allocated = 0;
};

MemoryReport ReadMemory();
// Just the bytes allocated (no RSS); what builds without jemalloc's
// per-thread counters use for maxmemory.
size_t AllocatedBytes();
std::string AllocatorName();
// Physical memory of the machine (total_system_memory).
size_t TotalSystemMemory();
// Returns memory the allocator holds but does not use to the OS.
void PurgeAllocator();
// jemalloc's background purging thread (jemalloc-bg-thread): freed memory
// goes back to the system even while the server is idle. False where the
// allocator has none.
bool SetAllocatorBackgroundThread(bool on);
// DEBUG MALLCTL: reads the allocator's numeric setting `name` into `old`,
// writing `set` if it is given. Returns 0 or an errno value (ENOTSUP
// without jemalloc).
int AllocatorCtlInt(const std::string& name, const int64_t* set, int64_t* old);
// DEBUG MALLCTL-STR: reads the string setting `name` into `old` (*has_old:
// it could be read), then writes `set` if given; "VOID" writes nothing but
// runs the control (thread.tcache.flush). Returns 0 or an errno value.
int AllocatorCtlStr(const std::string& name, const std::string* set, std::string* old, bool* has_old);
// Bytes formatted as Redis's *_human fields ("1.00M").
std::string HumanBytes(size_t n);

}  // namespace larder
