#include "keyspace/memory.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
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

#ifdef LARDER_JEMALLOC
int AllocatorCtlInt(const std::string& name, const int64_t* set, int64_t* old) {
  // The setting's width is not known up front: jemalloc answers EINVAL to a
  // wrong one, so try 8, 4, 2 and 1 bytes (little-endian: the low bytes of
  // the int64 are the value).
  for (size_t width = sizeof(int64_t); width >= 1; width /= 2) {
    int64_t out = 0, in = set ? *set : 0;
    size_t len = width;
    int rc = mallctl(name.c_str(), &out, &len, set ? &in : nullptr, set ? width : 0);
    if (rc == EPERM && set) {  // write-only (arena.<i>.purge): write without reading
      rc = mallctl(name.c_str(), nullptr, nullptr, &in, width);
      out = 0;
    }
    if (rc == EINVAL && width > 1) continue;
    if (rc == 0) *old = out;
    return rc;
  }
  return EINVAL;
}

int AllocatorCtlStr(const std::string& name, const std::string* set, std::string* old, bool* has_old) {
  // Read first: a write-only control (EPERM) may still be written.
  const char* out = nullptr;
  size_t len = sizeof(out);
  int rc = mallctl(name.c_str(), &out, &len, nullptr, 0);
  *has_old = rc == 0;
  if (rc == 0) *old = out ? out : "";
  if (rc != 0 && !(rc == EPERM && set)) return rc;
  if (!set) return 0;
  const char* in = set->c_str();
  bool void_arg = *set == "VOID";
  return mallctl(name.c_str(), nullptr, nullptr, void_arg ? nullptr : &in, void_arg ? 0 : sizeof(in));
}
#else
int AllocatorCtlInt(const std::string&, const int64_t*, int64_t*) { return ENOTSUP; }
int AllocatorCtlStr(const std::string&, const std::string*, std::string*, bool* has_old) {
  *has_old = false;
  return ENOTSUP;
}
#endif

std::string HumanBytes(size_t n) {
  double d = static_cast<double>(n);
  if (n < 1024) return fmt::format("{}B", n);
  if (n < 1024ULL * 1024) return fmt::format("{:.2f}K", d / 1024);
  if (n < 1024ULL * 1024 * 1024) return fmt::format("{:.2f}M", d / (1024 * 1024));
  if (n < 1024ULL * 1024 * 1024 * 1024) return fmt::format("{:.2f}G", d / (1024.0 * 1024 * 1024));
  return fmt::format("{:.2f}T", d / (1024.0 * 1024 * 1024 * 1024));
}

}  // namespace larder
