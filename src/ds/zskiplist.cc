#include "ds/zskiplist.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace larder {

namespace {
ZNode* AllocNode(int height, std::string_view member) {
  size_t bytes = sizeof(ZNode) + static_cast<size_t>(height) * sizeof(ZNode::Link) + member.size();
  auto* n = static_cast<ZNode*>(std::malloc(bytes));
  if (!n) throw std::bad_alloc();
  n->score = 0;
  n->backward = nullptr;
  n->hnext = nullptr;
  n->len = static_cast<uint32_t>(member.size());
  n->height = static_cast<uint8_t>(height);
  for (int i = 0; i < height; ++i) n->links()[i] = {nullptr, 0};
  if (!member.empty()) memcpy(const_cast<char*>(n->member().data()), member.data(), member.size());
  return n;
}
}  // namespace

ZSkipList::ZSkipList() : head_(AllocNode(kMaxHeight, {})) {}

ZSkipList::~ZSkipList() {
  for (ZNode* n = first(); n;) {
    ZNode* next = n->next();
    std::free(n);
    n = next;
  }
  std::free(head_);
}

int ZSkipList::RandomHeight() {
  int h = 1;
  while (h < kMaxHeight && (rng_() & 3) == 0) ++h;  // p = 1/4 per level
  return h;
}

ZNode* ZSkipList::Insert(double score, std::string_view member) {
  ZNode* n = AllocNode(RandomHeight(), member);
  n->score = score;
  Link(n);
  return n;
}

void ZSkipList::Link(ZNode* n) {
  ZNode* update[kMaxHeight];
  size_t rank[kMaxHeight];
  std::string_view member = n->member();
  ZNode* x = head_;
  for (int i = height_ - 1; i >= 0; --i) {
    rank[i] = i == height_ - 1 ? 0 : rank[i + 1];
    while (x->links()[i].forward && Before(*x->links()[i].forward, n->score, member)) {
      rank[i] += x->links()[i].span;
      x = x->links()[i].forward;
    }
    update[i] = x;
  }
  int h = n->height;
  if (h > height_) {
    for (int i = height_; i < h; ++i) {
      rank[i] = 0;
      update[i] = head_;
      head_->links()[i].span = size_;
    }
    height_ = h;
  }
  for (int i = 0; i < h; ++i) {
    n->links()[i].forward = update[i]->links()[i].forward;
    update[i]->links()[i].forward = n;
    // update[i]'s old span is split around n (rank[0] - rank[i] nodes lie
    // between update[i] and n's predecessor on level 0).
    n->links()[i].span = update[i]->links()[i].span - (rank[0] - rank[i]);
    update[i]->links()[i].span = (rank[0] - rank[i]) + 1;
  }
  for (int i = h; i < height_; ++i) ++update[i]->links()[i].span;  // the links that now jump n too
  n->backward = update[0] == head_ ? nullptr : update[0];
  if (n->next()) n->next()->backward = n;
  else tail_ = n;
  ++size_;
}

void ZSkipList::Unlink(ZNode* n) {
  ZNode* update[kMaxHeight];
  std::string_view member = n->member();
  ZNode* x = head_;
  for (int i = height_ - 1; i >= 0; --i) {
    while (x->links()[i].forward && x->links()[i].forward != n &&
           Before(*x->links()[i].forward, n->score, member))
      x = x->links()[i].forward;
    update[i] = x;
  }
  for (int i = 0; i < height_; ++i) {
    if (update[i]->links()[i].forward == n) {
      update[i]->links()[i].span += n->links()[i].span - 1;
      update[i]->links()[i].forward = n->links()[i].forward;
    } else {
      --update[i]->links()[i].span;
    }
  }
  if (n->next()) n->next()->backward = n->backward;
  else tail_ = n->backward;
  while (height_ > 1 && head_->links()[height_ - 1].forward == nullptr) --height_;
  --size_;
}

void ZSkipList::Erase(ZNode* n) {
  Unlink(n);
  std::free(n);
}

void ZSkipList::UpdateScore(ZNode* n, double score) {
  // In place when the order does not change.
  ZNode* prev = n->backward;
  ZNode* next = n->next();
  if ((!prev || prev->score < score || (prev->score == score && prev->member() < n->member())) &&
      (!next || score < next->score || (score == next->score && n->member() < next->member()))) {
    n->score = score;
    return;
  }
  Unlink(n);
  for (int i = 0; i < n->height; ++i) n->links()[i] = {nullptr, 0};
  n->score = score;
  Link(n);
}

size_t ZSkipList::RankOf(const ZNode* n) const {
  const ZNode* x = head_;
  size_t rank = 0;
  std::string_view member = n->member();
  for (int i = height_ - 1; i >= 0; --i) {
    // Advance while the next node is at or before n.
    while (x->links()[i].forward &&
           (x->links()[i].forward == n || Before(*x->links()[i].forward, n->score, member))) {
      rank += x->links()[i].span;
      x = x->links()[i].forward;
    }
    if (x == n) return rank - 1;
  }
  return rank - 1;
}

ZNode* ZSkipList::AtRank(size_t rank) const {
  const ZNode* x = head_;
  size_t traversed = 0;
  size_t want = rank + 1;  // 1-based
  for (int i = height_ - 1; i >= 0; --i) {
    while (x->links()[i].forward && traversed + x->links()[i].span <= want) {
      traversed += x->links()[i].span;
      x = x->links()[i].forward;
    }
    if (traversed == want) return const_cast<ZNode*>(x);
  }
  return nullptr;
}

size_t ZSkipList::HeadBytes() const { return malloc_usable_size(head_); }

}  // namespace larder
