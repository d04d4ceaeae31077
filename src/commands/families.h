// The command families, listed explicitly (no static initialisers, so the
// order and the set of families are visible in one place): each adds its
// registration table to the command table.
#pragma once

#include "engine/command.h"

namespace larder {

void RegisterConnectionFamily(CommandRegistry* r);
void RegisterKeysFamily(CommandRegistry* r);
void RegisterDumpFamily(CommandRegistry* r);
void RegisterStringFamily(CommandRegistry* r);
void RegisterHashFamily(CommandRegistry* r);
void RegisterSetFamily(CommandRegistry* r);
void RegisterListFamily(CommandRegistry* r);
void RegisterZSetFamily(CommandRegistry* r);
void RegisterStreamFamily(CommandRegistry* r);
void RegisterSortFamily(CommandRegistry* r);
void RegisterBitmapFamily(CommandRegistry* r);
void RegisterGeoFamily(CommandRegistry* r);
void RegisterHllFamily(CommandRegistry* r);
void RegisterMemoryFamily(CommandRegistry* r);
void RegisterCacheFamily(CommandRegistry* r);
void RegisterServerFamily(CommandRegistry* r);
void RegisterAclFamily(CommandRegistry* r);
void RegisterTransactionFamily(CommandRegistry* r);
void RegisterScriptFamily(CommandRegistry* r);
void RegisterFunctionFamily(CommandRegistry* r);
void RegisterPubSubFamily(CommandRegistry* r);
void RegisterPersistenceFamily(CommandRegistry* r);
void RegisterRestoreFamily(CommandRegistry* r);

// All of the above, in this order.
inline void RegisterFamilies(CommandRegistry* r) {
  RegisterConnectionFamily(r);
  RegisterKeysFamily(r);
  RegisterDumpFamily(r);
  RegisterStringFamily(r);
  RegisterHashFamily(r);
  RegisterSetFamily(r);
  RegisterListFamily(r);
  RegisterZSetFamily(r);
  RegisterStreamFamily(r);
  RegisterSortFamily(r);
  RegisterBitmapFamily(r);
  RegisterGeoFamily(r);
  RegisterHllFamily(r);
  RegisterMemoryFamily(r);
  RegisterCacheFamily(r);
  RegisterServerFamily(r);
  RegisterAclFamily(r);
  RegisterTransactionFamily(r);
  RegisterScriptFamily(r);
  RegisterFunctionFamily(r);
  RegisterPubSubFamily(r);
  RegisterPersistenceFamily(r);
  RegisterRestoreFamily(r);
}

}  // namespace larder
