// The allocator calls of active defragmentation (engine/defrag.h).
//
// jemalloc keeps small blocks in slabs of one size class. After churn, many
// slabs are partly empty: their free regions count as allocator_active but
// hold nothing. Moving a block out of a sparse slab into the slab new blocks
// come from lets the sparse one empty and go back to the system. jemalloc
// 5.3's `experimental.utilization.query` mallctl (in Debian's build) tells
// how full a block's slab is, the bin's average, and which slab is current;
// the move itself bypasses the thread cache, so the new block really comes
// from the bin's current slab and the old one really goes back to its slab.
//
// Without jemalloc (sanitizer builds) nothing is supported and nothing moves.
#pragma once

#include <cstddef>

namespace larder {

// Whether this build can defragment (jemalloc with the utilization query).
bool DefragSupported();

// Whether the block at `p` is worth moving: it lies in a slab that is not the
// bin's current one, and that slab is less used than the bin's slabs are on
// average. Large (non-slab) allocations never are.
bool DefragWorthMoving(const void* p);

// A copy of the block at `p` (all of its usable size) in a fresh block of the
// same size class, taken and freed past the thread cache; frees `p`. Returns
// the new block, or nullptr (and `p` untouched) if allocation failed.
void* DefragMove(void* p);

}  // namespace larder
