// Everything the generic key commands need to know about values of every type.
#pragma once

#include "keyspace/entry.h"
#include "keyspace/hash_value.h"
#include "keyspace/list_value.h"
#include "keyspace/set_value.h"
#include "keyspace/stream_value.h"
#include "keyspace/zset_value.h"

namespace larder {

// OBJECT ENCODING's answer (also DEBUG OBJECT's encoding field).
inline const char* ObjectEncodingName(const Entry* e) {
  switch (e->type) {
    case ObjType::kString:
      switch (static_cast<StrEncoding>(e->encoding)) {
        case StrEncoding::kInt: return "int";
        case StrEncoding::kEmbstr: return "embstr";
        case StrEncoding::kRaw: return "raw";
      }
      return "raw";
    case ObjType::kHash: return ObjectOf<HashValue>(e)->encoding();
    case ObjType::kSet: return ObjectOf<SetValue>(e)->encoding();
    case ObjType::kList: return ObjectOf<ListValue>(e)->encoding();
    case ObjType::kZSet: return ObjectOf<ZSetValue>(e)->encoding();
    case ObjType::kStream: return ObjectOf<StreamValue>(e)->encoding();
    default: return "unknown";
  }
}

}  // namespace larder
