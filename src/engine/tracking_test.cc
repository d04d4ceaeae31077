#include "engine/tracking.h"

#include <gtest/gtest.h>

#include "engine/client_state.h"
#include "engine/command.h"

namespace larder {

namespace {

CommandSpec Spec(const char* name, uint32_t flags) {
  CommandSpec s;
  s.name = name;
  s.flags = flags;
  return s;
}

}  // namespace

TEST(TrackingTable, RemembersReadersOnceAndCountsKeysAndItems) {
  Tracking t;
  TrackingTable table;
  table.Remember(t, "k", 0, 7);
  table.Remember(t, "k", 0, 7);  // the same reader again: one item
  table.Remember(t, "k", 1, 8);
  table.Remember(t, "j", 1, 8);
  EXPECT_EQ(t.keys.load(), 2);
  EXPECT_EQ(t.items.load(), 3);
  std::vector<std::pair<int, uint64_t>> readers;
  EXPECT_TRUE(table.Take(t, "k", &readers));
  std::sort(readers.begin(), readers.end());
  EXPECT_EQ(readers, (std::vector<std::pair<int, uint64_t>>{{0, 7}, {1, 8}}));
  EXPECT_FALSE(table.Take(t, "k", &readers));  // taken: a second write sends nothing
  EXPECT_EQ(t.keys.load(), 1);
  EXPECT_EQ(t.items.load(), 1);
  table.Clear(t);
  EXPECT_EQ(t.keys.load(), 0);
  EXPECT_EQ(t.items.load(), 0);
  EXPECT_EQ(table.AnyKey(), nullptr);
}

TEST(Tracking, BroadcastSendsOneSortedMessagePerPrefixAndHonoursNoloop) {
  Tracking t;
  t.AddPrefix("a:", 0, 1, false);
  t.AddPrefix("b:", 0, 1, false);
  t.AddPrefix("", 1, 2, true);  // NOLOOP: not the keys client 2 wrote
  std::vector<std::pair<std::string, uint64_t>> written{{"b:2", 9}, {"a:2", 9}, {"a:1", 2}, {"c", 9}, {"a:2", 9}};
  auto out = t.Broadcast(written);
  EXPECT_TRUE(written.empty());
  ASSERT_EQ(out.size(), 3u);
  // Prefixes in order: "" (client 2), "a:", "b:" (client 1).
  EXPECT_EQ(out[0].id, 2u);
  EXPECT_EQ(out[0].keys, (std::vector<std::string>{"a:2", "b:2", "c"}));
  EXPECT_EQ(out[1].keys, (std::vector<std::string>{"a:1", "a:2"}));
  EXPECT_EQ(out[2].keys, (std::vector<std::string>{"b:2"}));
  EXPECT_EQ(t.prefixes(), 3u);
  t.RemovePrefix("a:", 1);
  EXPECT_EQ(t.prefixes(), 2u);  // a prefix no client has is gone
}

TEST(Tracking, ClientCachingAppliesToTheNextCommandOrTransaction) {
  ClientState st;
  st.tracking = std::make_unique<TrackingState>();
  st.tracking->optin = true;
  CommandSpec get = Spec("get", kCmdReadOnly), set = Spec("set", kCmdWrite), caching = Spec("client|caching", 0);
  CommandSpec multi = Spec("multi", 0), exec = Spec("exec", 0);
  EXPECT_FALSE(NoteTrackedCommand(st, &get));  // OPTIN without CACHING yes
  NoteTrackedCommand(st, &caching);
  st.tracking->caching = true;  // CLIENT CACHING yes
  EXPECT_TRUE(NoteTrackedCommand(st, &get));
  EXPECT_FALSE(NoteTrackedCommand(st, &get));  // only the next one
  NoteTrackedCommand(st, &caching);
  st.tracking->caching = true;
  NoteTrackedCommand(st, &multi);
  st.multi = std::make_unique<MultiState>();
  NoteTrackedCommand(st, &get);  // queued
  NoteTrackedCommand(st, &exec);
  EXPECT_TRUE(WantsTracking(*st.tracking, &get));  // EXEC's commands still see it
  st.multi.reset();
  EXPECT_FALSE(NoteTrackedCommand(st, &get));
  EXPECT_FALSE(NoteTrackedCommand(st, &set));  // a write is never tracked
  st.tracking->bcast = true;
  st.tracking->optin = false;
  EXPECT_FALSE(WantsTracking(*st.tracking, &get));  // BCAST: prefixes, not reads
}

}  // namespace larder
