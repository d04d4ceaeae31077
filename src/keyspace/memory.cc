#include "keyspace/memory.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>

#ifdef LARDER_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define LARDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LARDER_ASAN 1
#endif
#endif
#ifdef LARDER_ASAN
// From the ASan runtime (declared here: GCC does not ship the header).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace larder {

static size_t ReadRss() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

size_t AllocatedBytes() {
#if defined(LARDER_JEMALLOC)
  return ReadMemory().used;
#elif defined(LARDER_ASAN)
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
}

MemoryReport ReadMemory() {
  MemoryReport r;
  r.rss = ReadRss();
#ifdef LARDER_JEMALLOC
  uint64_t epoch = 1;
  size_t sz = sizeof(epoch);
  mallctl("epoch", &epoch, &sz, &epoch, sz);
  size_t v = 0;
  sz = sizeof(v);
  if (mallctl("stats.allocated", &v, &sz, nullptr, 0) == 0) r.allocator_allocated = v;
  sz = sizeof(v);
  if (mallctl("stats.active", &v, &sz, nullptr, 0) == 0) r.allocator_active = v;
  sz = sizeof(v);
  if (mallctl("stats.resident", &v, &sz, nullptr, 0) == 0) r.allocator_resident = v;
  r.used = r.allocator_allocated;
#else
  r.used = AllocatedBytes();
  r.allocator_allocated = r.used;
  r.allocator_active = r.used;
  r.allocator_resident = r.rss;
#endif
  return r;
}

size_t TotalSystemMemory() {
  return static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string AllocatorName() {
#ifdef LARDER_JEMALLOC
  const char* version = nullptr;
  size_t sz = sizeof(version);
  if (mallctl("version", &version, &sz, nullptr, 0) == 0 && version) {
    std::string v(version);
    return "jemalloc-" + v.substr(0, v.find('-'));
  }
  return "jemalloc";
#else
  return "libc";
#endif
}

void PurgeAllocator() {
#ifdef LARDER_JEMALLOC
  mallctl("arena." "4096" ".purge", nullptr, nullptr, nullptr, 0);  // MALLCTL_ARENAS_ALL
#else
  malloc_trim(0);
#endif
}

bool SetAllocatorBackgroundThread(bool on) {
#ifdef LARDER_JEMALLOC
  return mallctl("background_thread", nullptr, nullptr, &on, sizeof(on)) == 0;
#else
  (void)on;
  return false;
#endif
}

std::string HumanBytes(size_t n) {
  double d = static_cast<double>(n);
  if (n < 1024) return fmt::format("{}B", n);
  if (n < 1024ULL * 1024) return fmt::format("{:.2f}K", d / 1024);
  if (n < 1024ULL * 1024 * 1024) return fmt::format("{:.2f}M", d / (1024 * 1024));
  if (n < 1024ULL * 1024 * 1024 * 1024) return fmt::format("{:.2f}G", d / (1024.0 * 1024 * 1024));
  return fmt::format("{:.2f}T", d / (1024.0 * 1024 * 1024 * 1024));
}

}  // namespace larder
