#include "common/defrag_alloc.h"

#include <cstdint>
#include <cstring>

#ifdef LARDER_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace larder {

#ifdef LARDER_JEMALLOC
namespace {

// experimental.utilization.query's answer for one pointer (jemalloc 5.3's
// layout, fields in this order).
struct SlabUtilization {
  void* slabcur;     // the bin's current slab (where new blocks come from)
  size_t nfree;      // free regions of the block's slab
  size_t nregs;      // regions of the slab (1 for a large allocation)
  size_t size;       // bytes of the slab
  size_t bin_nfree;  // free regions of all the bin's slabs
  size_t bin_nregs;  // regions of all the bin's slabs (0 for a large one)
};

// The query's name, translated once (a lookup by name walks the mallctl
// tree on every call; this runs once per key a pass looks at).
struct QueryMib {
  size_t mib[4] = {};
  size_t len = 4;
  bool ok = mallctlnametomib("experimental.utilization.query", mib, &len) == 0;
};

bool Query(const void* p, SlabUtilization* out) {
  static const QueryMib q;
  size_t len = sizeof(*out);
  return q.ok && mallctlbymib(q.mib, q.len, out, &len, const_cast<void**>(&p), sizeof(p)) == 0 &&
         len == sizeof(*out);
}

}  // namespace

bool DefragSupported() {
  static const bool supported = [] {
    void* probe = malloc(64);
    SlabUtilization u;
    bool ok = Query(probe, &u) && u.nregs > 1;
    free(probe);
    return ok;
  }();
  return supported;
}

bool DefragWorthMoving(const void* p) {
  SlabUtilization u;
  if (!Query(p, &u)) return false;
  if (u.nregs <= 1 || u.bin_nregs == 0 || u.nfree == 0) return false;  // large, or a full slab
  // In the current slab: a move would land in the same slab.
  auto off = reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(u.slabcur);
  if (u.slabcur && off < u.size) return false;
  // Less used than the bin's average: used/nregs < bin_used/bin_nregs.
  size_t used = u.nregs - u.nfree, bin_used = u.bin_nregs - u.bin_nfree;
  return used * u.bin_nregs < bin_used * u.nregs;
}

void* DefragMove(void* p) {
  size_t size = sallocx(p, 0);
  void* fresh = mallocx(size, MALLOCX_TCACHE_NONE);
  if (!fresh) return nullptr;
  memcpy(fresh, p, size);
  dallocx(p, MALLOCX_TCACHE_NONE);
  return fresh;
}

#else

bool DefragSupported() { return false; }
bool DefragWorthMoving(const void*) { return false; }
void* DefragMove(void*) { return nullptr; }

#endif

}  // namespace larder
