#include "script/store.h"

#include "common/sha1.h"
#include "common/strings.h"
#include "script/lua_runtime.h"

namespace larder::script {

std::string ScriptCache::Add(std::string_view body, uint32_t flags, size_t skip) {
  std::string sha = HexDigest(Sha1::Of(body));
  std::lock_guard lock(mu_);
  auto [it, fresh] = scripts_.try_emplace(sha);
  if (fresh) {
    it->second.body = std::string(body);
    it->second.flags = flags;
    it->second.skip = skip;
    bytes_ += body.size() + sha.size();
  }
  return sha;
}

std::optional<ScriptCache::Entry> ScriptCache::Find(std::string_view sha) const {
  std::lock_guard lock(mu_);
  auto it = scripts_.find(sha);
  if (it == scripts_.end()) return std::nullopt;
  return it->second;
}

bool ScriptCache::Exists(std::string_view sha) const {
  std::lock_guard lock(mu_);
  return scripts_.count(sha) > 0;
}

void ScriptCache::Flush() {
  std::lock_guard lock(mu_);
  scripts_.clear();
  bytes_ = 0;
  epoch_.fetch_add(1, std::memory_order_acq_rel);
}

size_t ScriptCache::count() const {
  std::lock_guard lock(mu_);
  return scripts_.size();
}

size_t ScriptCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

std::shared_ptr<const Libraries::Set> Libraries::Snapshot() const {
  std::lock_guard lock(mu_);
  return set_;
}

bool Libraries::Update(const std::function<bool(Set&)>& fn) {
  std::lock_guard lock(mu_);
  auto copy = std::make_shared<Set>(*set_);
  if (!fn(*copy)) return false;
  set_ = std::move(copy);
  version_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

const Library* Libraries::LibraryOf(const Set& set, std::string_view function, const LibraryFunction** fn) {
  for (const auto& [name, lib] : set)
    for (const LibraryFunction& f : lib.functions)
      if (EqualsIgnoreCase(f.name, function)) {
        if (fn) *fn = &f;
        return &lib;
      }
  return nullptr;
}

std::atomic<bool>& DenyScriptsDisabled() {
  static std::atomic<bool> off{false};
  return off;
}

ScriptCache& Scripts() {
  static ScriptCache cache;
  return cache;
}

Libraries& Functions() {
  static Libraries libs;
  return libs;
}

namespace {
thread_local LocalRuntimes tl_runtimes;
}

Runtime& LocalEval(bool deprecated_api) {
  LocalRuntimes& r = tl_runtimes;
  uint64_t epoch = Scripts().epoch();
  if (!r.eval || r.eval_epoch != epoch) {
    r.eval = std::make_unique<Runtime>(Runtime::Kind::kEval, deprecated_api);
    r.eval_epoch = epoch;
  }
  return *r.eval;
}

Runtime* LocalFunctions(bool deprecated_api, std::string* error) {
  LocalRuntimes& r = tl_runtimes;
  Libraries& libs = Functions();
  uint64_t version = libs.version();
  if (r.functions && r.functions_version == version) return r.functions.get();
  auto snapshot = libs.Snapshot();  // at least as new as `version`
  auto rt = std::make_unique<Runtime>(Runtime::Kind::kFunction, deprecated_api);
  for (const auto& [name, lib] : *snapshot) {
    std::string lib_name;
    size_t skip = 0;
    std::string err;
    if (!ParseLibraryShebang(lib.code, &lib_name, &skip, &err)) continue;
    std::vector<Runtime::Function> fns;
    if (!rt->LoadLibrary(std::string_view(lib.code).substr(skip), &fns, &err)) {
      *error = err;
      return nullptr;
    }
  }
  r.functions = std::move(rt);
  r.functions_version = version;
  return r.functions.get();
}

bool BuildLibrary(std::string_view code, Library* lib, std::string* error) {
  size_t skip;
  if (!ParseLibraryShebang(code, &lib->name, &skip, error)) return false;
  Runtime rt(Runtime::Kind::kFunction, false);
  std::vector<Runtime::Function> fns;
  if (!rt.LoadLibrary(code.substr(skip), &fns, error)) return false;
  lib->code = std::string(code);
  for (auto& f : fns) lib->functions.push_back({f.name, f.description, f.has_description, f.flags});
  return true;
}

size_t LocalEvalMemory() { return tl_runtimes.eval ? tl_runtimes.eval->memory() : 0; }
size_t LocalFunctionsMemory() { return tl_runtimes.functions ? tl_runtimes.functions->memory() : 0; }

}  // namespace larder::script
