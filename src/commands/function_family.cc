// FUNCTION (LOAD, DELETE, FLUSH, LIST, DUMP, RESTORE, STATS, KILL, HELP),
// FCALL and FCALL_RO. The libraries live in script::Functions(), shared by
// every shard; each shard's function interpreter reloads them after a
// change (script/store.h).
//
// FUNCTION DUMP's payload is Larder's own (docs/compatibility.md): for each
// library the byte 0xF5 and its code as a 4-byte little-endian length and
// the bytes, then the format version (2 bytes, little-endian, 1) and a
// 64-bit FNV-1a checksum of everything before it (8 bytes, little-endian).
#include <cstring>

#include "commands/families.h"
#include "commands/script_run.h"
#include "common/glob.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "engine/engine.h"
#include "script/lua_runtime.h"
#include "script/store.h"
#include "shard/shard.h"

namespace larder {

namespace {

using script::Libraries;
using script::Library;
using script::BuildLibrary;
using script::LibraryFunction;

// The library of `name`, ignoring case (Redis compares library names so).
Libraries::Set::iterator FindLibrary(Libraries::Set& set, std::string_view name) {
  for (auto it = set.begin(); it != set.end(); ++it)
    if (EqualsIgnoreCase(it->first, name)) return it;
  return set.end();
}

// Adds `lib` to `set`: false with the error when a function name is taken
// by another library.
bool AddLibrary(Libraries::Set& set, Library lib, std::string* error) {
  for (const LibraryFunction& f : lib.functions) {
    if (Libraries::LibraryOf(set, f.name, nullptr)) {
      *error = FormatError(OpStatus::kFunctionExists, f.name);
      return false;
    }
  }
  std::string name = lib.name;
  set[name] = std::move(lib);
  return true;
}

void FunctionLoad(CommandContext& ctx) {
  bool replace = false;
  size_t i = 2;
  for (; i + 1 < ctx.argc(); ++i) {
    if (EqualsIgnoreCase(ctx.arg(i), "replace")) {
      replace = true;
      continue;
    }
    return ctx.Error(OpStatus::kFunctionUnknownOption, ctx.arg(i));
  }
  if (i >= ctx.argc()) return ctx.Error(OpStatus::kFunctionLibraryNameMissing);
  Library lib;
  std::string error;
  if (!BuildLibrary(ctx.arg(i), &lib, &error)) return ctx.Error(error);
  std::string name = lib.name;
  bool ok = script::Functions().Update([&](Libraries::Set& set) {
    auto old = FindLibrary(set, lib.name);
    if (old != set.end()) {
      if (!replace) {
        error = FormatError(OpStatus::kFunctionLibraryExists, lib.name);
        return false;
      }
      set.erase(old);
    }
    return AddLibrary(set, std::move(lib), &error);
  });
  if (!ok) return ctx.Error(error);
  ctx.rb->Bulk(name);
}

void FunctionDelete(CommandContext& ctx) {
  bool found = script::Functions().Update([&](Libraries::Set& set) {
    auto it = set.find(ctx.arg(2));
    if (it == set.end()) return false;
    set.erase(it);
    return true;
  });
  if (!found) return ctx.Error(OpStatus::kFunctionLibraryNotFound);
  ctx.rb->Ok();
}

void FunctionFlush(CommandContext& ctx) {
  if (ctx.argc() > 3) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "FUNCTION");
  if (ctx.argc() == 3 && !EqualsIgnoreCase(ctx.arg(2), "sync") && !EqualsIgnoreCase(ctx.arg(2), "async"))
    return ctx.Error(OpStatus::kFunctionFlushMode);
  script::Functions().Update([](Libraries::Set& set) {
    set.clear();
    return true;
  });
  ctx.rb->Ok();
}

void FunctionList(CommandContext& ctx) {
  bool with_code = false;
  std::string_view pattern;
  bool library = false;
  for (size_t i = 2; i < ctx.argc(); ++i) {
    if (!with_code && EqualsIgnoreCase(ctx.arg(i), "withcode")) {
      with_code = true;
      continue;
    }
    if (!library && EqualsIgnoreCase(ctx.arg(i), "libraryname")) {
      if (i + 1 >= ctx.argc()) return ctx.Error(OpStatus::kFunctionLibraryNameMissing);
      library = true;
      pattern = ctx.arg(++i);
      continue;
    }
    return ctx.Error(OpStatus::kUnknownArgument, ctx.arg(i));
  }
  auto set = script::Functions().Snapshot();
  std::vector<const Library*> libs;
  for (const auto& [name, lib] : *set)
    if (!library || GlobMatch(pattern, name)) libs.push_back(&lib);
  resp::ReplyBuilder& rb = *ctx.rb;
  rb.ArrayHeader(libs.size());
  for (const Library* lib : libs) {
    rb.MapHeader(with_code ? 4 : 3);
    rb.Bulk("library_name");
    rb.Bulk(lib->name);
    rb.Bulk("engine");
    rb.Bulk("LUA");
    rb.Bulk("functions");
    rb.ArrayHeader(lib->functions.size());
    for (const LibraryFunction& f : lib->functions) {
      rb.MapHeader(3);
      rb.Bulk("name");
      rb.Bulk(f.name);
      rb.Bulk("description");
      if (f.has_description) rb.Bulk(f.description);
      else rb.Null();
      rb.Bulk("flags");
      std::vector<std::string> names = script::FlagNames(f.flags);
      rb.SetHeader(names.size());
      for (const auto& n : names) rb.SimpleString(n);
    }
    if (with_code) {
      rb.Bulk("library_code");
      rb.Bulk(lib->code);
    }
  }
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

void PutLE(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLE(std::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[pos + static_cast<size_t>(i)]);
  return v;
}

constexpr uint16_t kDumpVersion = 1;

void FunctionDump(CommandContext& ctx) {
  auto set = script::Functions().Snapshot();
  std::string out;
  for (const auto& [name, lib] : *set) {
    out.push_back('\xf5');
    PutLE(&out, lib.code.size(), 4);
    out.append(lib.code);
  }
  PutLE(&out, kDumpVersion, 2);
  PutLE(&out, Fnv1a(out), 8);
  ctx.rb->Bulk(out);
}

// The libraries' codes of a payload; false when its version or checksum is wrong.
bool ParseDump(std::string_view p, std::vector<std::string_view>* codes) {
  if (p.size() < 10) return false;
  size_t body = p.size() - 10;
  if (GetLE(p, body, 2) != kDumpVersion || GetLE(p, body + 2, 8) != Fnv1a(p.substr(0, body + 2))) return false;
  size_t pos = 0;
  while (pos < body) {
    if (static_cast<unsigned char>(p[pos]) != 0xf5 || pos + 5 > body) return false;
    size_t len = GetLE(p, pos + 1, 4);
    pos += 5;
    if (pos + len > body) return false;
    codes->push_back(p.substr(pos, len));
    pos += len;
  }
  return true;
}

void FunctionRestore(CommandContext& ctx) {
  enum class Policy { kAppend, kReplace, kFlush } policy = Policy::kAppend;
  if (ctx.argc() > 4) return ctx.Error(OpStatus::kSubcommandSyntax, ctx.arg(1), "FUNCTION");
  if (ctx.argc() == 4) {
    if (EqualsIgnoreCase(ctx.arg(3), "append")) policy = Policy::kAppend;
    else if (EqualsIgnoreCase(ctx.arg(3), "replace")) policy = Policy::kReplace;
    else if (EqualsIgnoreCase(ctx.arg(3), "flush")) policy = Policy::kFlush;
    else return ctx.Error(OpStatus::kFunctionRestorePolicy);
  }
  std::vector<std::string_view> codes;
  if (!ParseDump(ctx.arg(2), &codes)) return ctx.Error(OpStatus::kFunctionRestorePayload);
  std::vector<Library> libs;
  std::string error;
  for (std::string_view code : codes) {
    Library lib;
    if (!BuildLibrary(code, &lib, &error)) return ctx.Error(error);
    libs.push_back(std::move(lib));
  }
  bool ok = script::Functions().Update([&](Libraries::Set& set) {
    if (policy == Policy::kFlush) set.clear();
    for (Library& lib : libs) {
      auto old = FindLibrary(set, lib.name);
      if (old != set.end()) {
        if (policy != Policy::kReplace) {
          error = FormatError(OpStatus::kFunctionLibraryExistsRestore, lib.name);
          return false;
        }
        set.erase(old);
      }
    }
    for (Library& lib : libs)
      if (!AddLibrary(set, std::move(lib), &error)) return false;
    return true;
  });
  if (!ok) return ctx.Error(error);
  ctx.rb->Ok();
}

void FunctionStats(CommandContext& ctx) {
  auto set = script::Functions().Snapshot();
  size_t functions = 0;
  for (const auto& [name, lib] : *set) functions += lib.functions.size();
  resp::ReplyBuilder& rb = *ctx.rb;
  rb.MapHeader(2);
  rb.Bulk("running_script");
  std::string name;
  std::vector<std::string> command;
  int64_t duration_ms;
  if (BusyScriptInfo(&name, &command, &duration_ms)) {
    rb.MapHeader(3);
    rb.Bulk("name");
    rb.Bulk(name);
    rb.Bulk("command");
    rb.ArrayHeader(command.size());
    for (const auto& a : command) rb.Bulk(a);
    rb.Bulk("duration_ms");
    rb.Integer(duration_ms);
  } else {
    rb.Null();
  }
  rb.Bulk("engines");
  rb.MapHeader(1);
  rb.Bulk("LUA");
  rb.MapHeader(2);
  rb.Bulk("libraries_count");
  rb.Integer(static_cast<int64_t>(set->size()));
  rb.Bulk("functions_count");
  rb.Integer(static_cast<int64_t>(functions));
}

void FunctionKill(CommandContext& ctx) {
  std::string r = KillRunningScript(true);
  if (r.empty()) return ctx.rb->Ok();
  ctx.Error(std::string_view(r));
}

void FunctionHelp(CommandContext& ctx) {
  static const char* const kLines[] = {
      "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "LOAD [REPLACE] <FUNCTION CODE>",
      "    Create a new library with the given library name and code.",
      "DELETE <LIBRARY NAME>",
      "    Delete the given library.",
      "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
      "    Return general information on all the libraries:",
      "    * Library name",
      "    * The engine used to run the Library",
      "    * Library description",
      "    * Functions list",
      "    * Library code (if WITHCODE is given)",
      "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
      "STATS",
      "    Return information about the current function running:",
      "    * Function name",
      "    * Command used to run the function",
      "    * Duration in MS that the function is running",
      "    If no function is running, return nil",
      "    In addition, returns a list of available engines.",
      "KILL",
      "    Kill the current running function.",
      "FLUSH [ASYNC|SYNC]",
      "    Delete all the libraries.",
      "    When called without the optional mode argument, the behavior is determined by the",
      "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
      "    * ASYNC: Asynchronously flush the libraries.",
      "    * SYNC: Synchronously flush the libraries.",
      "DUMP",
      "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
      "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
      "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
      "    control how to handle existing libraries (default APPEND):",
      "    * FLUSH: delete all existing libraries.",
      "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
      "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
      "      libraries with the new libraries (notice that even on this option there is a chance of failure",
      "      in case of functions name collision with another library).",
      "HELP",
      "    Prints this help.",
  };
  ctx.HelpLines(kLines);
}

void FcallGeneric(CommandContext& ctx, bool read_only) {
  auto set = script::Functions().Snapshot();
  const LibraryFunction* fn = nullptr;
  if (!Libraries::LibraryOf(*set, ctx.arg(1), &fn)) return ctx.Error(OpStatus::kFunctionNotFound);
  size_t numkeys;
  if (!ParseNumKeys(ctx, &numkeys, true)) return;
  if (read_only && !(fn->flags & script::kFlagNoWrites)) return ctx.Error(OpStatus::kScriptWriteWithRo);
  if (!(fn->flags & (script::kFlagAllowOom | script::kFlagNoWrites)) && !ctx.engine->AdmitUnderMaxmemory(*ctx.shard))
    return ctx.Error(OpStatus::kOutOfMemory);
  auto run = std::make_shared<ScriptRun>();
  run->is_function = true;
  run->read_only = read_only;
  run->flags = fn->flags;
  run->name = fn->name;  // as registered (names are case-insensitive)
  run->keys.assign(ctx.args.begin() + 3, ctx.args.begin() + 3 + static_cast<long>(numkeys));
  run->args.assign(ctx.args.begin() + 3 + static_cast<long>(numkeys), ctx.args.end());
  run->command.assign(ctx.args.begin(), ctx.args.end());
  RunScript(ctx, std::move(run));
}

void Fcall(CommandContext& ctx) { FcallGeneric(ctx, false); }
void FcallRo(CommandContext& ctx) { FcallGeneric(ctx, true); }

std::vector<size_t> FcallKeys(std::span<const std::string_view> args) { return NumKeysAt(args, 2); }

}  // namespace

void RegisterFunctionFamily(CommandRegistry* r) {
  constexpr uint32_t NS = kCmdNoScript, S = kCmdStale, SK = kCmdSkipMonitor | kCmdNoMandatoryKeys | kCmdScriptRun, M = kCmdMayReplicate,
                     AB = kCmdAllowBusy, W = kCmdWrite, DO = kCmdDenyOom, L = kCmdLoading, LO = kCmdLocalOnly;
  auto fcall = [r](const char* name, uint32_t flags, Handler h, const char* summary) {
    CommandSpec s = MakeCommand(name, -3, flags, 0, 0, 0, h, "@slow @scripting", summary, "scripting");
    s.get_keys = FcallKeys;
    s.since = "7.0.0";
    r->Add(std::move(s));
  };
  fcall("fcall", NS | SK | M | S, Fcall, "Invokes a function.");
  fcall("fcall_ro", NS | SK | S | kCmdReadOnly, FcallRo, "Invokes a read-only function.");

  auto sub = [](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags | LO, 0, 0, 0, h, acl, summary, "scripting");
    s.route = Route::kConnection;
    s.since = "7.0.0";
    return s;
  };
  CommandSpec function = sub("function", -2, 0, nullptr, "@slow", "A container for function commands");
  function.subcommands.push_back(sub("function|delete", 3, W | NS, FunctionDelete, "@write @slow @scripting",
                                     "Deletes a library and its functions."));
  function.subcommands.push_back(
      sub("function|dump", 2, NS, FunctionDump, "@slow @scripting", "Dumps all libraries into a serialized binary payload."));
  function.subcommands.push_back(
      sub("function|flush", -2, W | NS, FunctionFlush, "@write @slow @scripting", "Deletes all libraries and functions."));
  function.subcommands.push_back(sub("function|help", 2, L | S, FunctionHelp, "@slow @scripting",
                                     "Returns helpful text about the different subcommands."));
  function.subcommands.push_back(sub("function|kill", 2, NS | AB, FunctionKill, "@slow @scripting",
                                     "Terminates a function during execution."));
  function.subcommands.push_back(
      sub("function|list", -2, NS, FunctionList, "@slow @scripting", "Returns information about all libraries."));
  function.subcommands.push_back(sub("function|load", -3, W | DO | NS, FunctionLoad, "@write @slow @scripting",
                                     "Creates a library."));
  function.subcommands.push_back(sub("function|restore", -3, W | DO | NS, FunctionRestore, "@write @slow @scripting",
                                     "Restores all libraries from a payload."));
  function.subcommands.push_back(sub("function|stats", 2, NS | AB, FunctionStats, "@slow @scripting",
                                     "Returns information about a function during execution."));
  r->Add(std::move(function));
}

}  // namespace larder
