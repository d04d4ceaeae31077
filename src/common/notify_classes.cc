#include "common/notify_classes.h"

namespace larder {

namespace {
struct Letter {
  char c;
  uint32_t cls;
};
// The letters A stands for, in the order Redis prints them when not all are set.
constexpr Letter kTypeLetters[] = {
    {'g', kNotifyGeneric}, {'$', kNotifyString}, {'l', kNotifyList},    {'s', kNotifySet},
    {'h', kNotifyHash},    {'z', kNotifyZset},   {'x', kNotifyExpired}, {'e', kNotifyEvicted},
    {'t', kNotifyStream},  {'d', kNotifyModule},
};
}  // namespace

std::optional<uint32_t> ParseNotifyClasses(std::string_view letters) {
  uint32_t classes = 0;
  for (char c : letters) {
    uint32_t cls = 0;
    switch (c) {
      case 'A': cls = kNotifyAll; break;
      case 'K': cls = kNotifyKeyspace; break;
      case 'E': cls = kNotifyKeyevent; break;
      case 'm': cls = kNotifyKeyMiss; break;
      case 'n': cls = kNotifyNew; break;
      case 'c': cls = kNotifyCache; break;
      default:
        for (const Letter& l : kTypeLetters)
          if (l.c == c) cls = l.cls;
    }
    if (cls == 0) return std::nullopt;
    classes |= cls;
  }
  return classes;
}

std::string FormatNotifyClasses(uint32_t classes) {
  std::string out;
  if ((classes & kNotifyAll) == kNotifyAll) {
    out += 'A';
  } else {
    for (const Letter& l : kTypeLetters)
      if (classes & l.cls) out += l.c;
    if (classes & kNotifyNew) out += 'n';
  }
  if (classes & kNotifyKeyspace) out += 'K';
  if (classes & kNotifyKeyevent) out += 'E';
  if (classes & kNotifyKeyMiss) out += 'm';
  if (classes & kNotifyCache) out += 'c';
  return out;
}

}  // namespace larder
