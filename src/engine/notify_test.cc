// notify-keyspace-events: the letters Redis 7.0 accepts and the canonical
// text CONFIG GET shows (checked against redis-server 7.0.15), and the
// channels a notification publishes to.
#include "engine/notify.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace larder {
namespace {

std::string Canonical(std::string_view letters) {
  auto c = ParseNotifyClasses(letters);
  return c ? FormatNotifyClasses(*c) : "<invalid>";
}

TEST(NotifyClasses, CanonicalTextIsRedisOne) {
  EXPECT_EQ(Canonical(""), "");
  EXPECT_EQ(Canonical("KEA"), "AKE");
  EXPECT_EQ(Canonical("AAK"), "AK");
  EXPECT_EQ(Canonical("Kgdnmt$lshzxeE"), "AKEm");  // Redis drops n after A
  EXPECT_EQ(Canonical("n"), "n");
  EXPECT_EQ(Canonical("Kn"), "nK");
  EXPECT_EQ(Canonical("nd"), "dn");
  EXPECT_EQ(Canonical("edt"), "etd");
  EXPECT_EQ(Canonical("mdEK"), "dKEm");
  EXPECT_EQ(Canonical("g$lshzxetd"), "A");
  EXPECT_EQ(Canonical("g$lshzxet"), "g$lshzxet");
  EXPECT_EQ(Canonical("Anm"), "Am");
  // Larder's cache class: not part of A, printed last.
  EXPECT_EQ(Canonical("cKA"), "AKc");
  EXPECT_EQ(Canonical("Ec"), "Ec");
}

TEST(NotifyClasses, ClassesOfTheLetters) {
  EXPECT_EQ(*ParseNotifyClasses("A") & (kNotifyKeyMiss | kNotifyNew | kNotifyCache), 0u);
  EXPECT_EQ(*ParseNotifyClasses("A") & kNotifyAll, kNotifyAll);
  EXPECT_EQ(*ParseNotifyClasses("K$"), kNotifyKeyspace | kNotifyString);
  EXPECT_EQ(*ParseNotifyClasses("Ex"), kNotifyKeyevent | kNotifyExpired);
  EXPECT_EQ(*ParseNotifyClasses("c"), kNotifyCache);
  EXPECT_FALSE(ParseNotifyClasses("KEAQ"));
  EXPECT_FALSE(ParseNotifyClasses("a"));
  EXPECT_FALSE(ParseNotifyClasses(" "));
}

TEST(NotifyClasses, ConfigSetParsesAndKeepsTheBits) {
  Config config;
  std::string err;
  ASSERT_TRUE(config.Set("notify-keyspace-events", "KEA", false, &err)) << err;
  EXPECT_EQ(config.Get("notify-keyspace-events").value(), "AKE");
  EXPECT_EQ(config.notify_keyspace_events.load(), kNotifyAll | kNotifyKeyspace | kNotifyKeyevent);
  EXPECT_FALSE(config.Set("notify-keyspace-events", "KEAQ", false, &err));
  EXPECT_EQ(err, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
  EXPECT_EQ(config.Get("notify-keyspace-events").value(), "AKE");  // unchanged
  ASSERT_TRUE(config.Set("notify-keyspace-events", "", false, &err));
  EXPECT_EQ(config.notify_keyspace_events.load(), 0u);
  EXPECT_EQ(config.Get("notify-keyspace-events").value(), "");
}

TEST(NotifyChannels, Names) {
  EXPECT_EQ(KeyspaceChannel(0, "foo"), "__keyspace@0__:foo");
  EXPECT_EQ(KeyeventChannel(15, "del"), "__keyevent@15__:del");
  EXPECT_EQ(KeyspaceChannel(3, std::string_view("a\0b", 3)), std::string("__keyspace@3__:a\0b", 18));
}

}  // namespace
}  // namespace larder
