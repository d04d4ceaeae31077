// Status values returned by keyspace operations, and the one place that maps
// each of them to the exact error text Redis 7 sends.
//
// Operations never format RESP: they return an OpStatus (or OpResult<T>) and the
// command handler turns a failure into a reply with ErrorText().
//
// Every error line the server sends comes from this table, the fixed ones and
// those with a variable part alike: the latter are fmt format strings ("{}"
// marks the variable part, a literal brace is written "{{" or "}}"), filled
// with FormatError(). Call sites never spell an error text themselves.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace larder {

enum class OpStatus : uint16_t {
  kOk,
  kKeyNotFound,      // a normal outcome for most commands (nil reply), an error for some
  kWrongType,
  kNotAnInteger,     // "value is not an integer or out of range"
  kNotAFloat,
  kSyntaxError,
  kOverflow,         // "increment or decrement would overflow"
  kNanOrInfinity,    // INCRBYFLOAT
  kNoSuchKey,        // RENAME and friends
  kOutOfRange,       // "index out of range"
  kStringTooLong,    // exceeds proto-max-bulk-len
  kOffsetOutOfRange,
  kInvalidExpire,    // without the command name; commands send kInvalidExpireTime
  kDbIndexOutOfRange,
  kSkipped,          // a conditional write (NX/XX/...) did not happen
  kOutOfMemory,

  // ---- Dispatch and protocol ----
  kUnknownCommand,                // name (cut to 128 bytes), quoted arguments
  kWrongArity,                    // full command name
  kUnknownSubcommand,             // subcommand, command in capitals
  kNoAuth,
  kMaxClients,
  kProtectedMode,
  kProtoTooBigInline,
  kProtoUnbalancedQuotes,
  kProtoTooBigMultibulkCount,
  kProtoInvalidMultibulkLength,
  kProtoTooBigBulkCount,
  kProtoExpectedBulk,             // the byte found
  kProtoInvalidBulkLength,
  kProtoUnauthenticatedMultibulk,
  kProtoUnauthenticatedBulk,

  // ---- Counts and ranges shared by several families ----
  kCountOutOfRange,
  kValueOutOfRange,
  kValueNotPositive,
  kNumkeysNotPositive,
  kCountNotPositive,
  kLimitNegative,

  // ---- Connection ----
  kWrongPass,
  kAuthWithoutPassword,
  kProtoVersionNotInteger,
  kNoProto,
  kHelloSyntax,
  kHelloNoAuth,
  kBadClientName,
  kUnrecognizedOption,            // CLIENT SETINFO attribute
  kUnknownClientType,
  kInvalidClientId,
  kClientIdNotPositive,
  kNoSuchClient,
  // CLIENT TRACKING / CACHING.
  kTrackingOneRedirect,
  kTrackingRedirectMissing,
  kTrackingPrefixNeedsBcast,
  kTrackingBcastSwitch,
  kTrackingBcastOptInOut,
  kTrackingOptInAndOut,
  kTrackingPrefixOverlapsExisting,
  kTrackingPrefixOverlapsGiven,
  kCachingNotTracking,
  kCachingYesNotOptIn,
  kCachingNoNotOptOut,
  kTimeoutNotInteger,
  kTimeoutNegative,               // also blocking commands
  kTimeoutNotFloat,               // blocking commands
  kTimeoutOutOfRange,             // blocking commands

  // ---- Keys ----
  kSameObject,
  kUnsupportedOption,
  kExpireNxAndOthers,
  kExpireGtAndLt,
  kInvalidExpireTime,             // command name; also SET/GETEX and HEXPIRE
  kLfuSelected,
  kLfuNotSelected,
  kInvalidCursor,                 // also HSCAN, SSCAN, ZSCAN
  kInvalidFirstDb,
  kInvalidSecondDb,

  // ---- Strings ----
  kDecrementOverflow,
  kLcsNotStrings,
  kLcsLenAndIdx,
  kLcsTooBig,

  // ---- Hashes ----
  kHashValueNotInteger,
  kHashValueNotFloat,
  kValueNanOrInfinity,
  kFieldsMissing,
  kNumFieldsMismatch,
  kNumFieldsNotPositive,          // HEXPIRE family
  kNumFieldsNotPositiveInteger,   // HTTL family
  kExpireNegative,

  // ---- Lists ----
  kRankZero,
  kCountNegative,
  kMaxlenNegative,

  // ---- Sets ----
  kNumkeysTooBig,

  // ---- Sorted sets ----
  kZAddXxAndNx,
  kZAddGtLtAndNx,
  kZAddIncrSingle,
  kScoreNaN,
  kMinMaxNotFloat,
  kMinMaxNotLex,
  kLimitNeedsByScoreOrLex,
  kWithScoresByLex,
  kNeedInputKey,                  // command name
  kWeightNotFloat,

  // ---- SORT ----
  kSortNotDouble,
  kSortByDenied,   // BY or GET patterns for a user that cannot read every key
  kSortGetDenied,

  // ---- Bitmaps ----
  kBitOffsetNotInteger,
  kBitNotInteger,
  kBitNotZeroOrOne,
  kBitopNotSingleSource,
  kInvalidOverflowType,
  kInvalidBitfieldType,
  kBitfieldRoOnlyGet,

  // ---- HyperLogLog ----
  kNotHll,
  kHllCorrupt,
  kPfDebugNoKey,
  kHllNotSparse,
  kUnknownPfDebugSubcommand,
  kHllTestRegister,               // index, expected, found
  kHllTestSparseCorrupt,
  kHllTestDisagree,
  kHllTestTooBigError,

  // ---- Geo ----
  kInvalidLonLat,                 // as printf's %f
  kUnsupportedUnit,
  kRadiusNotNumeric,
  kRadiusNegative,
  kWidthNotNumeric,
  kHeightNotNumeric,
  kBoxNegative,
  kGeoMemberUndecodable,
  kGeoCountNotPositive,
  kGeoSearchStoreWith,
  kGeoRadiusStoreWith,
  kGeoNeedsOneFrom,               // command as typed
  kGeoNeedsOneBy,                 // command as typed
  kGeoAnyNeedsCount,

  // ---- Streams ----
  kStreamInvalidId,
  kStreamIdNotGreater,            // XADD
  kStreamIdZero,
  kStreamExhausted,
  kStreamMaxlenNegative,
  kStreamLimitNegative,
  kStreamMaxlenAndMinid,
  kStreamLimitWithoutStrategy,
  kStreamXtrimNeedsStrategy,
  kStreamLimitWithoutApprox,
  kStreamInvalidStartId,
  kStreamInvalidEndId,
  kStreamBlockInScript,           // command as typed
  kStreamUnbalancedXread,
  kStreamGroupOnlyXreadgroup,
  kStreamNoackOnlyXreadgroup,
  kStreamMissingGroup,
  kStreamNoGroupRead,             // key, group
  kStreamDollarInXreadgroup,
  kStreamGreaterOnlyXreadgroup,
  kStreamEntriesReadNegative,
  kStreamXgroupNeedsKey,
  kStreamNoGroupForKey,           // group, key
  kStreamBusyGroup,
  kStreamEntriesAddedNegative,
  kStreamSetIdBelowMaxDeleted,
  kStreamSetIdBelowTop,
  kStreamEntriesAddedBelowLength,
  kStreamNoKeyOrGroup,            // key, group
  kStreamInvalidMinIdleXclaim,
  kStreamInvalidIdleXclaim,
  kStreamInvalidTimeXclaim,
  kStreamInvalidRetryCountXclaim,
  kStreamUnknownXclaimOption,     // option as typed
  kStreamInvalidMinIdleXautoclaim,
  kStreamAutoclaimCount,
  kStreamGroupGone,               // a blocked XREADGROUP's group was destroyed
  kStreamKeyGone,                 // a blocked XREADGROUP's key was deleted

  // ---- Server ----
  kConfigSetUnknown,
  kConfigSetDuplicate,
  kConfigSetFailed,               // parameter, why (from Config::Set)
  kNoConfigFile,
  kConfigRewriteFailed,           // strerror()
  kConfigRewriteWriteFailed,
  // Reasons Config::Set refuses a value Larder could not honour (the `{}`
  // of kConfigSetFailed, or of the config file's fatal error).
  kConfigNoIoThreads,
  kConfigNoTlsReplication,
  kConfigNoTlsCluster,
  kConfigNoClientEviction,
  kConfigNoActiveDefrag,
  kInvalidCommand,                // COMMAND GETKEYS
  kInvalidCommandArity,
  kNoKeyArguments,
  kSlowlogCount,
  kDebugNotAllowed,
  kPlainErr,                 // "ERR" alone (a failed SAVE)
  kBgsaveInProgress,
  kDebugReloadOption,
  kDebugReloadFailed,
  kShutdownErrors,
  kDebugUnknownSubcommand,
  kDebugProtocolType,
  kAllocatorCtl,                  // DEBUG MALLCTL: jemalloc's errno as text
  kPackedThresholdRange,          // DEBUG QUICKLIST-PACKED-THRESHOLD
  kResp2NotSupported,             // DEBUG PROTOCOL push
  kSubcommandSyntax,              // subcommand as typed, command in capitals
  kFunctionFlushMode,
  kFunctionLibraryNameMissing,
  kUnknownArgument,               // the argument as typed (FUNCTION LIST)
  kNoSuchUser,                    // CLIENT KILL USER
  kUnblockReason,
  kUnblocked,                     // sent to the client CLIENT UNBLOCK ... ERROR unblocks
  kNoShutdownInProgress,

  // ---- Cache (read-through, write-through, write-behind) ----
  kCacheRuleNotAllowed,
  kInvalidCacheRule,              // why (from ParseRule or AddRule)
  kRulePendingWrites,
  kCacheWarmRefused,              // why (from CacheManager::Warm, which also logs it at start-up)
  kLeaseNotPositive,
  kEarlyNegative,
  kDeadLetterId,
  kWriteBehindDisabled,
  kReplayJournalFailed,
  kJournalWriteFailed,
  kAofRewriteFailed,              // the reason (already in progress, no snapshot...)
  kAofLoadFailed,                 // DEBUG LOADAOF: the loader's message
  kWriteKeyNotAlone,
  kSourceRefusedWrite,            // source, key, the database's message
  kSourceLoadFailed,              // source, key, the database's message

  // ---- transactions ----
  kExecWithoutMulti,
  kDiscardWithoutMulti,
  kMultiNested,
  kWatchInMulti,
  kExecAbort,
  kExecAbortBecause,              // the refusal's error line
  kNotAllowedInMulti,
  kNotInSubscribedMode,  // {}: the command
  kNotInAtomicUnit,               // command
  kAtomicWriteRuleKey,            // key
  kMultiQueueLimit,
  kExecAclChanged,                // the reason, one of the three below
  kExecAclNoCommand,
  kExecAclNoKey,
  kExecAclNoChannel,

  // ---- ACL ----
  // Why a rule is refused: the reason alone, filled into kAclSetUserModifier
  // (and the ACL LOAD and start-up messages).
  kAclUnknownCommand,
  kAclSyntaxError,
  kAclKeyAfterAll,
  kAclChannelAfterAll,
  kAclNoSuchPassword,
  kAclBadHash,
  kAclDuplicateUser,
  kAclFirstArgOfSub,
  // Error lines.
  kAclSetUserModifier,            // the rule, the reason
  kAclUsernameSpaces,
  kAclUnmatchedParen,             // the argument
  kAclDefaultUndeletable,
  kAclNoAclFile,
  kAclSaveFailed,
  kAclLoadFailed,                 // the problems found
  kAclUnknownCategory,            // the category (cut to 128 bytes)
  kAclGenpassBits,
  kAclDryRunNoUser,               // user
  kAclDryRunNoCommand,            // command as typed
  kNoPermCommand,                 // full command name
  kNoPermKey,
  kNoPermChannel,
  // ACL DRYRUN's replies for a denial (bulk strings, not errors).
  kAclDryRunCommand,              // full command name
  kAclDryRunKey,                  // key
  kAclDryRunChannel,              // channel
  // Pieces of ACL LOAD's error line, one per problem found.
  kAclFileOpen,                   // file, strerror
  kAclFileQuotes,                 // file, line
  kAclFileNoUser,                 // file, line
  kAclFileBadName,                // file, line, user
  kAclFileDuplicate,              // user, line
  kAclFileParen,                  // file, line
  kAclFileUnknown,                // file, line, rule, reason
  kAclFileRule,                   // file, line, reason
  kAclFileNothingChanged,

  kInvalidCommandArgs,  // COMMAND GETKEYS: the key specs find no key
  kClusterDisabled,
  // ---- Scripting (EVAL, FUNCTION) ----
  // Pieces raised inside Lua (a script's error gets its code later).
  kScriptNonexistentGlobal,
  kScriptReadonlyTable,
  kScriptCallNoArgs,
  kScriptCallArgType,
  kScriptCallOutsideRun,
  kScriptWrongArgs,
  kScriptErrorReplyArg,
  kScriptStatusReplyArg,
  kScriptLogArgs,
  kScriptLogLevelType,
  kScriptLogLevel,
  kScriptSetrespArgs,
  kScriptSetrespValue,
  kScriptSetReplArgs,
  kScriptSetReplValue,
  kScriptAclCheckInvalid,
  kScriptRegisterOnlyLoad,
  kScriptRegisterSingleArg,
  kScriptRegisterKeyType,
  kScriptRegisterNameType,
  kScriptRegisterDescType,
  kScriptRegisterCallbackType,
  kScriptRegisterFlagsType,
  kScriptRegisterUnknownFlag,
  kScriptRegisterUnknownArg,
  kScriptRegisterNoName,
  kScriptRegisterNoCallback,
  kScriptRegisterFirstArg,
  kScriptRegisterSecondArg,
  kScriptRegisterArgs,
  kFunctionNameInvalid,
  kFunctionExistsInLibrary,
  kScriptErrorWhere,
  // Error lines.
  kScriptStackLimit,
  kScriptKilled,
  kFunctionKilled,
  kFunctionLoadTimeout,
  kScriptCompile,
  kFunctionCompile,
  kFunctionRegisterError,
  kScriptRunFailed,
  kScriptShebangInvalid,
  kScriptShebangInvalidEngine,
  kScriptShebangEngine,
  kScriptShebangOption,
  kScriptShebangFlag,
  kFunctionMissingMetadata,
  kFunctionMetadataNameTwice,
  kFunctionMetadataValue,
  kFunctionNoLibraryName,
  kFunctionLibraryNameInvalid,
  kFunctionEngineNotFound,
  kFunctionNoneRegistered,
  kFunctionLibraryExists,
  kFunctionExists,
  kFunctionLibraryExistsRestore,
  kFunctionNotFound,
  kFunctionLibraryNotFound,
  kFunctionBadNumKeys,
  kFunctionRestorePayload,
  kFunctionRestorePolicy,
  // ---- MIGRATE ----
  kMigrateKeysNeedEmptyKey,
  kMigrateConnect,
  kMigrateIo,             // "writing" / "reading"
  kMigrateTargetError,    // the target's error line
  kScriptWriteWithRo,
  kNoScript,
  kNumKeysNegative,
  kNumKeysTooMany,
  kScriptUnknownCommand,
  kScriptWrongArity,
  kScriptCommandNotAllowed,
  kScriptWriteInRo,
  kScriptAclDenied,
  kScriptAclKeyDenied,
  kNotBusy,
  kUnkillable,
  kBusyScript,
  kLoading,
  kMisconf,
  kBusyFunction,
  kScriptFlushMode,
  kFunctionUnknownOption,
  // RESTORE (the payload's trailer check shares kFunctionRestorePayload's text)
  kBusyKey,
  kBadDataFormat,
  kRestoreInvalidTtl,
  kRestoreInvalidIdleTime,
  kRestoreInvalidFreq,

  kStatusCount,  // not a status: the number of them (keep it last)
};

// Returns the table entry for `s`: the full error line without the leading '-'
// and trailing CRLF (for kWrongType: WRONGTYPE Operation against a key holding
// the wrong kind of value). It is a format string: send it through FormatError().
std::string_view ErrorText(OpStatus s);

// Whether the entry is a piece of a line rather than a whole error line
// (ACL rule reasons, ACL DRYRUN's replies, parts of ACL LOAD's report,
// the reasons in EXEC's ACL refusal, the reasons Config::Set refuses a
// value Larder cannot honour).
inline bool IsTextFragment(OpStatus s) {
  return (s >= OpStatus::kAclUnknownCommand && s <= OpStatus::kAclFirstArgOfSub) ||
         (s >= OpStatus::kAclDryRunCommand && s <= OpStatus::kAclFileNothingChanged) ||
         (s >= OpStatus::kScriptNonexistentGlobal && s <= OpStatus::kScriptErrorWhere) ||
         (s >= OpStatus::kExecAclNoCommand && s <= OpStatus::kExecAclNoChannel) ||
         (s >= OpStatus::kConfigNoIoThreads && s <= OpStatus::kConfigNoActiveDefrag);
}

// The error line for `s` with its "{}" placeholders replaced by `args`, in
// order (and "{{" "}}" turned into braces).
std::string FormatError(OpStatus s, auto&&... args) {
  return fmt::format(fmt::runtime(ErrorText(s)), args...);
}

// A value or a status. Small and cheap: used on the hot path instead of exceptions.
template <typename T>
class OpResult {
 public:
  OpResult(T v) : value_(std::move(v)), status_(OpStatus::kOk) {}  // NOLINT: implicit by design
  OpResult(OpStatus s) : status_(s) {}                             // NOLINT
  bool ok() const { return status_ == OpStatus::kOk; }
  OpStatus status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  OpStatus status_;
};

}  // namespace larder
