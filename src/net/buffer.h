// A growable byte buffer for socket I/O: data lives in [read_pos, write_pos).
// Unlike std::string it never zero-fills the room it reserves for the next read.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace larder::net {

class IoBuffer {
 public:
  std::string_view Readable() const { return {data_.get() + rpos_, wpos_ - rpos_}; }
  size_t size() const { return wpos_ - rpos_; }
  bool empty() const { return rpos_ == wpos_; }
  size_t capacity() const { return cap_; }

  // Makes room for at least `n` more bytes after the data.
  char* Reserve(size_t n) {
    if (cap_ - wpos_ >= n) return data_.get() + wpos_;
    size_t live = wpos_ - rpos_;
    if (rpos_ > 0 && cap_ - live >= n && live <= cap_ / 2) {
      memmove(data_.get(), data_.get() + rpos_, live);
    } else {
      size_t want = cap_ ? cap_ : 4096;
      while (want - live < n) want *= 2;
      std::unique_ptr<char[]> fresh(new char[want]);
      if (live) memcpy(fresh.get(), data_.get() + rpos_, live);
      data_ = std::move(fresh);
      cap_ = want;
    }
    rpos_ = 0;
    wpos_ = live;
    return data_.get() + wpos_;
  }
  size_t Writable() const { return cap_ - wpos_; }
  void Commit(size_t n) { wpos_ += n; }
  void Consume(size_t n) {
    rpos_ += n;
    if (rpos_ == wpos_) rpos_ = wpos_ = 0;
  }
  // Gives memory back after a burst (huge argument, long pipeline).
  void ShrinkIfIdle(size_t keep) {
    if (empty() && cap_ > keep) {
      data_.reset();
      cap_ = rpos_ = wpos_ = 0;
    }
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_ = 0, rpos_ = 0, wpos_ = 0;
};

}  // namespace larder::net
