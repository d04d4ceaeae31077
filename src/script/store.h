// What every shard's interpreters share: the script cache (sha → body,
// SCRIPT LOAD / EVAL add, SCRIPT FLUSH empties) and the function libraries
// (FUNCTION LOAD / DELETE / FLUSH / RESTORE). Each is behind its own mutex;
// a shard's interpreter compiles from them lazily:
//
//   EVALSHA on shard 3 → Runtimes::Local().eval has f_<sha>? else
//   ScriptCache::Find(sha) → CompileScript → run
//   FCALL → Runtimes::Local().functions built at the libraries' version?
//   else rebuilt from Libraries::Snapshot() → run
//
// A flush bumps an epoch: each shard drops its interpreter (Redis resets
// its Lua VM on SCRIPT FLUSH) at its next script.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "script/lua_runtime.h"

namespace larder::script {

class ScriptCache {
 public:
  struct Entry {
    std::string body;
    uint32_t flags = 0;  // from the shebang line
    size_t skip = 0;     // the shebang line's bytes
    // Set when a run reached a key on a shard it did not hold: later runs
    // hold every shard from the start.
    std::shared_ptr<std::atomic<bool>> needs_all = std::make_shared<std::atomic<bool>>(false);
  };
  // Adds a body (its sha is computed); returns the sha.
  std::string Add(std::string_view body, uint32_t flags, size_t skip);
  std::optional<Entry> Find(std::string_view sha) const;  // sha in lowercase
  bool Exists(std::string_view sha) const;
  void Flush();
  size_t count() const;
  size_t bytes() const;
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> scripts_;
  size_t bytes_ = 0;
  std::atomic<uint64_t> epoch_{0};
};

struct LibraryFunction {
  std::string name;
  std::string description;
  bool has_description = false;
  uint32_t flags = 0;
};

struct Library {
  std::string name;
  std::string code;  // the whole payload, shebang line included
  std::vector<LibraryFunction> functions;
};

class Libraries {
 public:
  // Replaces the whole set (FUNCTION LOAD, DELETE, FLUSH, RESTORE build the
  // new set and swap it in under the lock).
  using Set = std::map<std::string, Library, std::less<>>;
  std::shared_ptr<const Set> Snapshot() const;
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // Applies fn to a copy of the current set; commits it when fn returns
  // true. Serialized: two loads cannot both miss each other's names.
  bool Update(const std::function<bool(Set&)>& fn);
  // Which library holds function `name` (null if none), in the snapshot.
  static const Library* LibraryOf(const Set& set, std::string_view function, const LibraryFunction** fn);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Set> set_ = std::make_shared<Set>();
  std::atomic<uint64_t> version_{0};
};

// Compiles and runs a library's code in a fresh interpreter: its name and
// functions (FUNCTION LOAD, FUNCTION RESTORE, a file's function records), or
// false with the error line.
bool BuildLibrary(std::string_view code, Library* lib, std::string* error);

// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call no-script commands.
std::atomic<bool>& DenyScriptsDisabled();

// The process-wide store.
ScriptCache& Scripts();
Libraries& Functions();

// The calling thread's interpreters, made on first use and remade after a
// flush (scripts) or a change of the libraries (functions).
struct LocalRuntimes {
  std::unique_ptr<Runtime> eval;
  uint64_t eval_epoch = 0;
  std::unique_ptr<Runtime> functions;
  uint64_t functions_version = ~0ULL;
};
Runtime& LocalEval(bool deprecated_api);
// Null with *error when the libraries fail to load again (cannot happen
// for code that loaded once; kept for safety).
Runtime* LocalFunctions(bool deprecated_api, std::string* error);
// The memory of the calling thread's interpreters (INFO).
size_t LocalEvalMemory();
size_t LocalFunctionsMemory();

}  // namespace larder::script
