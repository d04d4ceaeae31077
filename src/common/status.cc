#include "common/status.h"

namespace larder {

std::string_view ErrorText(OpStatus s) {
  switch (s) {
    case OpStatus::kOk: return "";
    case OpStatus::kKeyNotFound: return "ERR no such key";
    case OpStatus::kWrongType:
      return "WRONGTYPE Operation against a key holding the wrong kind of value";
    case OpStatus::kNotAnInteger: return "ERR value is not an integer or out of range";
    case OpStatus::kNotAFloat: return "ERR value is not a valid float";
    case OpStatus::kSyntaxError: return "ERR syntax error";
    case OpStatus::kOverflow: return "ERR increment or decrement would overflow";
    case OpStatus::kNanOrInfinity: return "ERR increment would produce NaN or Infinity";
    case OpStatus::kNoSuchKey: return "ERR no such key";
    case OpStatus::kOutOfRange: return "ERR index out of range";
    case OpStatus::kStringTooLong: return "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    case OpStatus::kOffsetOutOfRange: return "ERR offset is out of range";
    case OpStatus::kInvalidExpire: return "ERR invalid expire time";
    case OpStatus::kDbIndexOutOfRange: return "ERR DB index is out of range";
    case OpStatus::kSkipped: return "";
    case OpStatus::kOutOfMemory:
      return "OOM command not allowed when used memory > 'maxmemory'.";

    // ---- Dispatch and protocol ----
    case OpStatus::kUnknownCommand: return "ERR unknown command '{}', with args beginning with: {}";
    case OpStatus::kWrongArity: return "ERR wrong number of arguments for '{}' command";
    case OpStatus::kUnknownSubcommand: return "ERR unknown subcommand '{}'. Try {} HELP.";
    case OpStatus::kInvalidCommandArgs: return "ERR Invalid arguments specified for command";
    case OpStatus::kClusterDisabled: return "ERR This instance has cluster support disabled";
    case OpStatus::kNoAuth: return "NOAUTH Authentication required.";
    case OpStatus::kMaxClients: return "ERR max number of clients reached";
    case OpStatus::kProtectedMode:
      return "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for "
             "the default user. In this mode connections are only accepted from the loopback interface. If you want "
             "to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
             "disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface "
             "by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not "
             "publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
             "Alternatively you can just disable the protected mode by editing the Redis configuration file, and "
             "setting the protected mode option to 'no', and then restarting the server. 3) If you started the "
             "server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an "
             "authentication password for the default user. NOTE: You only need to do one of the above things in "
             "order for the server to start accepting connections from the outside.";
    case OpStatus::kProtoTooBigInline: return "ERR Protocol error: too big inline request";
    case OpStatus::kProtoUnbalancedQuotes: return "ERR Protocol error: unbalanced quotes in request";
    case OpStatus::kProtoTooBigMultibulkCount: return "ERR Protocol error: too big mbulk count string";
    case OpStatus::kProtoInvalidMultibulkLength: return "ERR Protocol error: invalid multibulk length";
    case OpStatus::kProtoTooBigBulkCount: return "ERR Protocol error: too big bulk count string";
    case OpStatus::kProtoExpectedBulk: return "ERR Protocol error: expected '$', got '{}'";
    case OpStatus::kProtoInvalidBulkLength: return "ERR Protocol error: invalid bulk length";
    case OpStatus::kProtoUnauthenticatedMultibulk: return "ERR Protocol error: unauthenticated multibulk length";
    case OpStatus::kProtoUnauthenticatedBulk: return "ERR Protocol error: unauthenticated bulk length";

    // ---- Counts and ranges shared by several families ----
    case OpStatus::kCountOutOfRange:
      return "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
    case OpStatus::kValueOutOfRange: return "ERR value is out of range";
    case OpStatus::kValueNotPositive: return "ERR value is out of range, must be positive";
    case OpStatus::kNumkeysNotPositive: return "ERR numkeys should be greater than 0";
    case OpStatus::kCountNotPositive: return "ERR count should be greater than 0";
    case OpStatus::kLimitNegative: return "ERR LIMIT can't be negative";

    // ---- Connection ----
    case OpStatus::kWrongPass: return "WRONGPASS invalid username-password pair or user is disabled.";
    case OpStatus::kAuthWithoutPassword:
      return "ERR AUTH <password> called without any password configured for the default user. Are you sure your "
             "configuration is correct?";
    case OpStatus::kProtoVersionNotInteger: return "ERR Protocol version is not an integer or out of range";
    case OpStatus::kNoProto: return "NOPROTO unsupported protocol version";
    case OpStatus::kHelloSyntax: return "ERR Syntax error in HELLO option '{}'";
    case OpStatus::kHelloNoAuth:
      return "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH "
             "<user> <pass> option can be used to authenticate the client and select the RESP protocol version at the "
             "same time";
    case OpStatus::kBadClientName: return "ERR Client names cannot contain spaces, newlines or special characters.";
    case OpStatus::kUnrecognizedOption: return "ERR Unrecognized option '{}'";
    case OpStatus::kUnknownClientType: return "ERR Unknown client type '{}'";
    case OpStatus::kInvalidClientId: return "ERR Invalid client ID";
    case OpStatus::kClientIdNotPositive: return "ERR client-id should be greater than 0";
    case OpStatus::kNoSuchClient: return "ERR No such client";
    case OpStatus::kTrackingOneRedirect: return "ERR A client can only redirect to a single other client";
    case OpStatus::kTrackingRedirectMissing: return "ERR The client ID you want redirect to does not exist";
    case OpStatus::kTrackingPrefixNeedsBcast: return "ERR PREFIX option requires BCAST mode to be enabled";
    case OpStatus::kTrackingBcastSwitch:
      return "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then "
             "re-enabling it with a different mode.";
    case OpStatus::kTrackingBcastOptInOut: return "ERR OPTIN and OPTOUT are not compatible with BCAST";
    case OpStatus::kTrackingOptInAndOut: return "ERR You can't specify both OPTIN mode and OPTOUT mode";
    case OpStatus::kTrackingPrefixOverlapsExisting:
      return "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.";
    case OpStatus::kTrackingPrefixOverlapsGiven:
      return "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not "
             "overlap.";
    case OpStatus::kCachingNotTracking:
      return "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode "
             "enabled";
    case OpStatus::kCachingYesNotOptIn:
      return "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.";
    case OpStatus::kCachingNoNotOptOut:
      return "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.";
    case OpStatus::kTimeoutNotInteger: return "ERR timeout is not an integer or out of range";
    case OpStatus::kTimeoutNegative: return "ERR timeout is negative";
    case OpStatus::kTimeoutNotFloat: return "ERR timeout is not a float or out of range";
    case OpStatus::kTimeoutOutOfRange: return "ERR timeout is out of range";

    // ---- Keys ----
    case OpStatus::kSameObject: return "ERR source and destination objects are the same";
    case OpStatus::kUnsupportedOption: return "ERR Unsupported option {}";
    case OpStatus::kExpireNxAndOthers: return "ERR NX and XX, GT or LT options at the same time are not compatible";
    case OpStatus::kExpireGtAndLt: return "ERR GT and LT options at the same time are not compatible";
    case OpStatus::kInvalidExpireTime: return "ERR invalid expire time in '{}' command";
    case OpStatus::kLfuSelected:
      return "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between "
             "policies at runtime LRU and LFU data will take some time to adjust.";
    case OpStatus::kLfuNotSelected:
      return "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
             "switching between policies at runtime LRU and LFU data will take some time to adjust.";
    case OpStatus::kInvalidCursor: return "ERR invalid cursor";
    case OpStatus::kInvalidFirstDb: return "ERR invalid first DB index";
    case OpStatus::kInvalidSecondDb: return "ERR invalid second DB index";

    // ---- Strings ----
    case OpStatus::kDecrementOverflow: return "ERR decrement would overflow";
    case OpStatus::kLcsNotStrings: return "ERR The specified keys must contain string values";
    case OpStatus::kLcsLenAndIdx: return "ERR If you want both the length and indexes, please just use IDX.";
    case OpStatus::kLcsTooBig: return "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";

    // ---- Hashes ----
    case OpStatus::kHashValueNotInteger: return "ERR hash value is not an integer";
    case OpStatus::kHashValueNotFloat: return "ERR hash value is not a float";
    case OpStatus::kValueNanOrInfinity: return "ERR value is NaN or Infinity";
    case OpStatus::kFieldsMissing: return "ERR Mandatory argument FIELDS is missing or not at the right position";
    case OpStatus::kNumFieldsMismatch: return "ERR The `numfields` parameter must match the number of arguments";
    case OpStatus::kNumFieldsNotPositive: return "ERR Parameter `numFields` should be greater than 0";
    case OpStatus::kNumFieldsNotPositiveInteger: return "ERR Number of fields must be a positive integer";
    case OpStatus::kExpireNegative: return "ERR invalid expire time, must be >= 0";

    // ---- Lists ----
    case OpStatus::kRankZero:
      return "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to "
             "start from the end of the list";
    case OpStatus::kCountNegative: return "ERR COUNT can't be negative";
    case OpStatus::kMaxlenNegative: return "ERR MAXLEN can't be negative";

    // ---- Sets ----
    case OpStatus::kNumkeysTooBig: return "ERR Number of keys can't be greater than number of args";

    // ---- Sorted sets ----
    case OpStatus::kZAddXxAndNx: return "ERR XX and NX options at the same time are not compatible";
    case OpStatus::kZAddGtLtAndNx: return "ERR GT, LT, and/or NX options at the same time are not compatible";
    case OpStatus::kZAddIncrSingle: return "ERR INCR option supports a single increment-element pair";
    case OpStatus::kScoreNaN: return "ERR resulting score is not a number (NaN)";
    case OpStatus::kMinMaxNotFloat: return "ERR min or max is not a float";
    case OpStatus::kMinMaxNotLex: return "ERR min or max not valid string range item";
    case OpStatus::kLimitNeedsByScoreOrLex:
      return "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
    case OpStatus::kWithScoresByLex: return "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
    case OpStatus::kNeedInputKey: return "ERR at least 1 input key is needed for '{}' command";
    case OpStatus::kWeightNotFloat: return "ERR weight value is not a float";

    // ---- SORT ----
    case OpStatus::kSortNotDouble: return "ERR One or more scores can't be converted into double";
    case OpStatus::kSortByDenied: return "ERR BY option of SORT denied due to insufficient ACL permissions.";
    case OpStatus::kSortGetDenied: return "ERR GET option of SORT denied due to insufficient ACL permissions.";

    // ---- Bitmaps ----
    case OpStatus::kBitOffsetNotInteger: return "ERR bit offset is not an integer or out of range";
    case OpStatus::kBitNotInteger: return "ERR bit is not an integer or out of range";
    case OpStatus::kBitNotZeroOrOne: return "ERR The bit argument must be 1 or 0.";
    case OpStatus::kBitopNotSingleSource: return "ERR BITOP NOT must be called with a single source key.";
    case OpStatus::kInvalidOverflowType: return "ERR Invalid OVERFLOW type specified";
    case OpStatus::kInvalidBitfieldType:
      return "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    case OpStatus::kBitfieldRoOnlyGet: return "ERR BITFIELD_RO only supports the GET subcommand";

    // ---- HyperLogLog ----
    case OpStatus::kNotHll: return "WRONGTYPE Key is not a valid HyperLogLog string value.";
    case OpStatus::kHllCorrupt: return "INVALIDOBJ Corrupted HLL object detected";
    case OpStatus::kPfDebugNoKey: return "ERR The specified key does not exist";
    case OpStatus::kHllNotSparse: return "ERR HLL encoding is not sparse";
    case OpStatus::kUnknownPfDebugSubcommand: return "ERR Unknown PFDEBUG subcommand '{}'";
    case OpStatus::kHllTestRegister: return "TESTFAILED Register {} should be {} but is {}";
    case OpStatus::kHllTestSparseCorrupt: return "TESTFAILED sparse representation corrupted";
    case OpStatus::kHllTestDisagree: return "TESTFAILED dense/sparse disagree";
    case OpStatus::kHllTestTooBigError: return "TESTFAILED Too big error. card:{}";

    // ---- Geo ----
    case OpStatus::kInvalidLonLat: return "ERR invalid longitude,latitude pair {:f},{:f}";
    case OpStatus::kUnsupportedUnit: return "ERR unsupported unit provided. please use M, KM, FT, MI";
    case OpStatus::kRadiusNotNumeric: return "ERR need numeric radius";
    case OpStatus::kRadiusNegative: return "ERR radius cannot be negative";
    case OpStatus::kWidthNotNumeric: return "ERR need numeric width";
    case OpStatus::kHeightNotNumeric: return "ERR need numeric height";
    case OpStatus::kBoxNegative: return "ERR height or width cannot be negative";
    case OpStatus::kGeoMemberUndecodable: return "ERR could not decode requested zset member";
    case OpStatus::kGeoCountNotPositive: return "ERR COUNT must be > 0";
    case OpStatus::kGeoSearchStoreWith:
      return "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options";
    case OpStatus::kGeoRadiusStoreWith:
      return "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options";
    case OpStatus::kGeoNeedsOneFrom: return "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}";
    case OpStatus::kGeoNeedsOneBy: return "ERR exactly one of BYRADIUS and BYBOX can be specified for {}";
    case OpStatus::kGeoAnyNeedsCount: return "ERR the ANY argument requires COUNT argument";

    // ---- Streams ----
    case OpStatus::kStreamInvalidId: return "ERR Invalid stream ID specified as stream command argument";
    case OpStatus::kStreamIdNotGreater:
      return "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    case OpStatus::kStreamIdZero: return "ERR The ID specified in XADD must be greater than 0-0";
    case OpStatus::kStreamExhausted:
      return "ERR The stream has exhausted the last possible ID, unable to add more items";
    case OpStatus::kStreamMaxlenNegative: return "ERR The MAXLEN argument must be >= 0.";
    case OpStatus::kStreamLimitNegative: return "ERR The LIMIT argument must be >= 0.";
    case OpStatus::kStreamMaxlenAndMinid:
      return "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    case OpStatus::kStreamLimitWithoutStrategy:
      return "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy";
    case OpStatus::kStreamXtrimNeedsStrategy: return "ERR syntax error, XTRIM must be called with a trimming strategy";
    case OpStatus::kStreamLimitWithoutApprox:
      return "ERR syntax error, LIMIT cannot be used without the special ~ option";
    case OpStatus::kStreamInvalidStartId: return "ERR invalid start ID for the interval";
    case OpStatus::kStreamInvalidEndId: return "ERR invalid end ID for the interval";
    case OpStatus::kStreamBlockInScript: return "ERR {} command is not allowed with BLOCK option from scripts";
    case OpStatus::kStreamUnbalancedXread:
      return "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.";
    case OpStatus::kStreamGroupOnlyXreadgroup:
      return "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.";
    case OpStatus::kStreamNoackOnlyXreadgroup:
      return "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.";
    case OpStatus::kStreamMissingGroup: return "ERR Missing GROUP option for XREADGROUP";
    case OpStatus::kStreamNoGroupRead:
      return "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option";
    case OpStatus::kStreamDollarInXreadgroup:
      return "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
             "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return "
             "an empty result set.";
    case OpStatus::kStreamGreaterOnlyXreadgroup:
      return "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.";
    case OpStatus::kStreamEntriesReadNegative: return "ERR value for ENTRIESREAD must be positive or -1";
    case OpStatus::kStreamXgroupNeedsKey:
      return "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the "
             "MKSTREAM option to create an empty stream automatically.";
    case OpStatus::kStreamNoGroupForKey: return "NOGROUP No such consumer group '{}' for key name '{}'";
    case OpStatus::kStreamBusyGroup: return "BUSYGROUP Consumer Group name already exists";
    case OpStatus::kStreamEntriesAddedNegative: return "ERR entries_added must be positive";
    case OpStatus::kStreamSetIdBelowMaxDeleted:
      return "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id";
    case OpStatus::kStreamSetIdBelowTop:
      return "ERR The ID specified in XSETID is smaller than the target stream top item";
    case OpStatus::kStreamEntriesAddedBelowLength:
      return "ERR The entries_added specified in XSETID is smaller than the target stream length";
    case OpStatus::kStreamNoKeyOrGroup: return "NOGROUP No such key '{}' or consumer group '{}'";
    case OpStatus::kStreamInvalidMinIdleXclaim: return "ERR Invalid min-idle-time argument for XCLAIM";
    case OpStatus::kStreamInvalidIdleXclaim: return "ERR Invalid IDLE option argument for XCLAIM";
    case OpStatus::kStreamInvalidTimeXclaim: return "ERR Invalid TIME option argument for XCLAIM";
    case OpStatus::kStreamInvalidRetryCountXclaim: return "ERR Invalid RETRYCOUNT option argument for XCLAIM";
    case OpStatus::kStreamUnknownXclaimOption: return "ERR Unrecognized XCLAIM option '{}'";
    case OpStatus::kStreamInvalidMinIdleXautoclaim: return "ERR Invalid min-idle-time argument for XAUTOCLAIM";
    case OpStatus::kStreamAutoclaimCount: return "ERR COUNT must be > 0";
    case OpStatus::kStreamGroupGone:
      return "NOGROUP the consumer group this client was blocked on no longer exists";
    case OpStatus::kStreamKeyGone: return "UNBLOCKED the stream key no longer exists";

    // ---- Server ----
    case OpStatus::kConfigSetUnknown: return "ERR Unknown option or number of arguments for CONFIG SET - '{}'";
    case OpStatus::kConfigSetDuplicate:
      return "ERR CONFIG SET failed (possibly related to argument '{}') - duplicate parameter";
    case OpStatus::kConfigSetFailed: return "ERR CONFIG SET failed (possibly related to argument '{}') - {}";
    case OpStatus::kNoConfigFile: return "ERR The server is running without a config file";
    case OpStatus::kConfigRewriteFailed: return "ERR Rewriting config file: {}";
    case OpStatus::kConfigRewriteWriteFailed: return "ERR Rewriting config file: write failed";
    case OpStatus::kConfigNoIoThreads:
      return "Larder has no I/O threads: each shard thread does its own I/O (set 'threads' instead), only "
             "io-threads 1 is accepted";
    case OpStatus::kConfigNoTlsReplication: return "Larder has no replication, tls-replication cannot be enabled";
    case OpStatus::kConfigNoTlsCluster: return "Larder has no cluster bus, tls-cluster cannot be enabled";
    case OpStatus::kConfigNoClientEviction:
      return "Larder does not evict clients (maxmemory-clients), only 0 is accepted";
    // Word for word what a Redis built without its own jemalloc (Debian's) answers.
    case OpStatus::kConfigNoActiveDefrag:
      return "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified "
             "Jemalloc like the one shipped by default with the Redis source distribution";
    case OpStatus::kInvalidCommand: return "ERR Invalid command specified";
    case OpStatus::kInvalidCommandArity: return "ERR Invalid number of arguments specified for command";
    case OpStatus::kNoKeyArguments: return "ERR The command has no key arguments";
    case OpStatus::kSlowlogCount: return "ERR count should be greater than or equal to -1";
    case OpStatus::kPlainErr: return "ERR";
    case OpStatus::kBgsaveInProgress: return "ERR Background save already in progress";
    case OpStatus::kDebugReloadOption: return "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.";
    case OpStatus::kDebugReloadFailed: return "ERR Error trying to load the RDB dump, check server logs.";
    case OpStatus::kShutdownErrors: return "ERR Errors trying to SHUTDOWN. Check logs.";
    case OpStatus::kDebugNotAllowed:
      return "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it "
             "from a local connection, otherwise you need to set this option in the configuration file, and then "
             "restart the server.";
    case OpStatus::kDebugUnknownSubcommand:
      return "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.";
    case OpStatus::kAllocatorCtl: return "ERR {}";
    case OpStatus::kPackedThresholdRange:
      return "ERR argument must be a memory value bigger than 1 and smaller than 4gb";
    case OpStatus::kDebugProtocolType:
      return "ERR Wrong protocol type name. Please use one of the following: "
             "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false";
    case OpStatus::kResp2NotSupported: return "ERR RESP2 is not supported by this command";
    case OpStatus::kSubcommandSyntax:
      return "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.";
    case OpStatus::kFunctionFlushMode: return "ERR FUNCTION FLUSH only supports SYNC|ASYNC option";
    case OpStatus::kFunctionLibraryNameMissing: return "ERR library name argument was not given";
    case OpStatus::kUnknownArgument: return "ERR Unknown argument {}";
    case OpStatus::kNoSuchUser: return "ERR No such user '{}'";
    case OpStatus::kUnblockReason: return "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR";
    case OpStatus::kUnblocked: return "UNBLOCKED client unblocked via CLIENT UNBLOCK";
    case OpStatus::kNoShutdownInProgress: return "ERR No shutdown in progress.";

    // ---- Scripting (EVAL, FUNCTION) ----
    case OpStatus::kScriptNonexistentGlobal: return "Script attempted to access nonexistent global variable '{}'";
    case OpStatus::kScriptReadonlyTable: return "Attempt to modify a readonly table";
    case OpStatus::kScriptCallNoArgs: return "Please specify at least one argument for this redis lib call";
    case OpStatus::kScriptCallArgType: return "Lua redis lib command arguments must be strings or integers";
    case OpStatus::kScriptCallOutsideRun: return "redis.call/pcall can only be called inside a script invocation";
    case OpStatus::kScriptWrongArgs: return "wrong number of arguments";
    case OpStatus::kScriptErrorReplyArg: return "wrong number or type of arguments";
    case OpStatus::kScriptStatusReplyArg: return "wrong number or type of arguments";
    case OpStatus::kScriptLogArgs: return "redis.log() requires two arguments or more.";
    case OpStatus::kScriptLogLevelType: return "First argument must be a number (log level).";
    case OpStatus::kScriptLogLevel: return "Invalid debug level.";
    case OpStatus::kScriptSetrespArgs: return "redis.setresp() requires one argument.";
    case OpStatus::kScriptSetrespValue: return "RESP version must be 2 or 3.";
    case OpStatus::kScriptSetReplArgs: return "redis.set_repl() requires one argument.";
    case OpStatus::kScriptSetReplValue: return "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.";
    case OpStatus::kScriptAclCheckInvalid: return "Invalid command passed to redis.acl_check_cmd()";
    case OpStatus::kScriptRegisterOnlyLoad: return "redis.register_function can only be called on FUNCTION LOAD command";
    case OpStatus::kScriptRegisterSingleArg: return "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).";
    case OpStatus::kScriptRegisterKeyType: return "named argument key given to redis.register_function is not a string";
    case OpStatus::kScriptRegisterNameType: return "function_name argument given to redis.register_function must be a string";
    case OpStatus::kScriptRegisterDescType: return "description argument given to redis.register_function must be a string";
    case OpStatus::kScriptRegisterCallbackType: return "callback argument given to redis.register_function must be a function";
    case OpStatus::kScriptRegisterFlagsType: return "flags argument to redis.register_function must be a table representing function flags";
    case OpStatus::kScriptRegisterUnknownFlag: return "unknown flag given";
    case OpStatus::kScriptRegisterUnknownArg: return "unknown argument given to redis.register_function";
    case OpStatus::kScriptRegisterNoName: return "redis.register_function must get a function name argument";
    case OpStatus::kScriptRegisterNoCallback: return "redis.register_function must get a callback argument";
    case OpStatus::kScriptRegisterFirstArg: return "first argument to redis.register_function must be a string";
    case OpStatus::kScriptRegisterSecondArg: return "second argument to redis.register_function must be a function";
    case OpStatus::kScriptRegisterArgs: return "wrong number of arguments to redis.register_function";
    case OpStatus::kFunctionNameInvalid: return "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";
    case OpStatus::kFunctionExistsInLibrary: return "Function already exists in the library";
    case OpStatus::kScriptErrorWhere: return " script: {}, on {}:{}.";
    case OpStatus::kScriptStackLimit: return "ERR reached lua stack limit";
    case OpStatus::kScriptKilled: return "ERR Script killed by user with SCRIPT KILL...";
    case OpStatus::kFunctionKilled: return "ERR Script killed by user with FUNCTION KILL...";
    case OpStatus::kFunctionLoadTimeout: return "ERR FUNCTION LOAD timeout";
    case OpStatus::kScriptCompile: return "ERR Error compiling script (new function): {}";
    case OpStatus::kFunctionCompile: return "ERR Error compiling function: {}";
    case OpStatus::kFunctionRegisterError: return "ERR Error registering functions: {}";
    case OpStatus::kScriptRunFailed: return "ERR Error running script {}, {}";
    case OpStatus::kScriptShebangInvalid: return "ERR Invalid script shebang";
    case OpStatus::kScriptShebangInvalidEngine: return "ERR Invalid engine in script shebang";
    case OpStatus::kScriptShebangEngine: return "ERR Unexpected engine in script shebang: {}";
    case OpStatus::kScriptShebangOption: return "ERR Unknown lua shebang option: {}";
    case OpStatus::kScriptShebangFlag: return "ERR Unexpected flag in script shebang: {}";
    case OpStatus::kFunctionMissingMetadata: return "ERR Missing library metadata";
    case OpStatus::kFunctionMetadataNameTwice: return "ERR Invalid metadata value, name argument was given multiple times";
    case OpStatus::kFunctionMetadataValue: return "ERR Invalid metadata value given: {}";
    case OpStatus::kFunctionNoLibraryName: return "ERR Library name was not given";
    case OpStatus::kFunctionLibraryNameInvalid: return "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";
    case OpStatus::kFunctionEngineNotFound: return "ERR Engine '{}' not found";
    case OpStatus::kFunctionNoneRegistered: return "ERR No functions registered";
    case OpStatus::kFunctionLibraryExists: return "ERR Library '{}' already exists";
    case OpStatus::kFunctionExists: return "ERR Function {} already exists";
    case OpStatus::kFunctionLibraryExistsRestore: return "ERR Library {} already exists";
    case OpStatus::kFunctionNotFound: return "ERR Function not found";
    case OpStatus::kFunctionLibraryNotFound: return "ERR Library not found";
    case OpStatus::kFunctionBadNumKeys: return "ERR Bad number of keys provided";
    case OpStatus::kFunctionRestorePayload: return "ERR DUMP payload version or checksum are wrong";
    case OpStatus::kFunctionRestorePolicy: return "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.";
    case OpStatus::kMigrateKeysNeedEmptyKey:
      return "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
    case OpStatus::kMigrateConnect: return "IOERR error or timeout connecting to the client";
    case OpStatus::kMigrateIo: return "IOERR error or timeout {} to target instance";
    case OpStatus::kMigrateTargetError: return "ERR Target instance replied with error: {}";
    case OpStatus::kScriptWriteWithRo: return "ERR Can not execute a script with write flag using *_ro command.";
    case OpStatus::kNoScript: return "NOSCRIPT No matching script. Please use EVAL.";
    case OpStatus::kNumKeysNegative: return "ERR Number of keys can't be negative";
    case OpStatus::kNumKeysTooMany: return "ERR Number of keys can't be greater than number of args";
    case OpStatus::kScriptUnknownCommand: return "ERR Unknown Redis command called from script";
    case OpStatus::kScriptWrongArity: return "ERR Wrong number of args calling Redis command from script";
    case OpStatus::kScriptCommandNotAllowed: return "ERR This Redis command is not allowed from script";
    case OpStatus::kScriptWriteInRo: return "ERR Write commands are not allowed from read-only scripts.";
    case OpStatus::kScriptAclDenied: return "NOPERM The user executing the script can't run this command or subcommand";
    case OpStatus::kScriptAclKeyDenied: return "NOPERM The user executing the script can't access at least one of the keys mentioned in the command";
    case OpStatus::kNotBusy: return "NOTBUSY No scripts in execution right now.";
    case OpStatus::kUnkillable: return "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
    case OpStatus::kLoading: return "LOADING Redis is loading the dataset in memory";
    case OpStatus::kMisconf:
      return "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
             "Commands that may modify the data set are disabled, because this instance is configured to report "
             "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check "
             "the Redis logs for details about the RDB error.";
    case OpStatus::kBusyScript: return "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
    case OpStatus::kBusyFunction: return "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
    case OpStatus::kScriptFlushMode: return "ERR SCRIPT FLUSH only support SYNC|ASYNC option";
    case OpStatus::kFunctionUnknownOption: return "ERR Unknown option given: {}";

    // ---- RESTORE ----
    case OpStatus::kBusyKey: return "BUSYKEY Target key name already exists.";
    case OpStatus::kBadDataFormat: return "ERR Bad data format";
    case OpStatus::kRestoreInvalidTtl: return "ERR Invalid TTL value, must be >= 0";
    case OpStatus::kRestoreInvalidIdleTime: return "ERR Invalid IDLETIME value, must be >= 0";
    case OpStatus::kRestoreInvalidFreq: return "ERR Invalid FREQ value, must be >= 0 and <= 255";

    // ---- Cache (read-through, write-through, write-behind) ----
    case OpStatus::kCacheRuleNotAllowed:
      return "ERR CACHE RULE and CACHE WARM are not allowed. If the enable-cache-rule-command option is set to "
             "\"local\", you can run them from a local connection, otherwise you need to set this option in the "
             "configuration file, and then restart the server.";
    case OpStatus::kInvalidCacheRule: return "ERR invalid cache rule: {}";
    case OpStatus::kRulePendingWrites:
      return "ERR the rule still has {} key(s) to write behind; remove it once they are flushed";
    case OpStatus::kCacheWarmRefused: return "ERR {}";
    case OpStatus::kLeaseNotPositive: return "ERR lease is not a positive integer (milliseconds)";
    case OpStatus::kEarlyNegative: return "ERR EARLY is not a non-negative integer (milliseconds)";
    case OpStatus::kDeadLetterId: return "ERR the dead letter id is a positive integer or ALL";
    case OpStatus::kWriteBehindDisabled: return "ERR write-behind is not enabled";
    case OpStatus::kReplayJournalFailed: return "ERR write-behind journal write failed: {}";
    case OpStatus::kAofRewriteFailed: return "ERR {}";
    case OpStatus::kAofLoadFailed: return "ERR Error loading the AOF: {}";
    case OpStatus::kJournalWriteFailed:
      return "ERR write-behind journal write failed, the change may not reach the database: {}";
    case OpStatus::kWriteKeyNotAlone:
      return "ERR a write-through or write-behind key must be written by a command on that key alone";
    case OpStatus::kSourceRefusedWrite: return "ERR cache source '{}' refused the write to '{}': {}";
    case OpStatus::kSourceLoadFailed: return "ERR cache source '{}' failed to load '{}': {}";

    // ---- transactions ----
    case OpStatus::kExecWithoutMulti: return "ERR EXEC without MULTI";
    case OpStatus::kDiscardWithoutMulti: return "ERR DISCARD without MULTI";
    case OpStatus::kMultiNested: return "ERR MULTI calls can not be nested";
    case OpStatus::kWatchInMulti: return "ERR WATCH inside MULTI is not allowed";
    case OpStatus::kExecAbort: return "EXECABORT Transaction discarded because of previous errors.";
    case OpStatus::kExecAbortBecause: return "EXECABORT Transaction discarded because of: {}";
    case OpStatus::kNotAllowedInMulti: return "ERR Command not allowed inside a transaction";
    case OpStatus::kNotInSubscribedMode:
      return "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
             "this context";
    case OpStatus::kNotInAtomicUnit: return "ERR '{}' cannot run inside a transaction or a script";
    case OpStatus::kAtomicWriteRuleKey:
      return "ERR '{}' is a write-through or write-behind key: write it outside MULTI/EXEC and scripts, where its "
             "rule writes it to the database";
    case OpStatus::kExecAclChanged:
      return "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
             "This command is no longer allowed for the following reason: {}";
    case OpStatus::kExecAclNoCommand: return "no permission to execute the command or subcommand";
    case OpStatus::kExecAclNoKey: return "no permission to touch the specified keys";
    case OpStatus::kExecAclNoChannel: return "no permission to access one of the channels used as arguments";
    case OpStatus::kMultiQueueLimit:
      return "ERR the commands queued in this transaction are over client-query-buffer-limit";

    // ---- ACL ----
    case OpStatus::kAclUnknownCommand: return "Unknown command or category name in ACL";
    case OpStatus::kAclSyntaxError: return "Syntax error";
    case OpStatus::kAclKeyAfterAll:
      return "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any "
             "effect. Try 'resetkeys' to start with an empty list of patterns";
    case OpStatus::kAclChannelAfterAll:
      return "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any "
             "effect. Try 'resetchannels' to start with an empty list of channels";
    case OpStatus::kAclNoSuchPassword: return "The password you are trying to remove from the user does not exist";
    case OpStatus::kAclBadHash:
      return "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
    case OpStatus::kAclDuplicateUser:
      return "Duplicate user found. A user can only be defined once in config files";
    case OpStatus::kAclFirstArgOfSub: return "Allowing first-arg of a subcommand is not supported";
    case OpStatus::kAclSetUserModifier: return "ERR Error in ACL SETUSER modifier '{}': {}";
    case OpStatus::kAclUsernameSpaces: return "ERR Usernames can't contain spaces or null characters";
    case OpStatus::kAclUnmatchedParen: return "ERR Unmatched parenthesis in acl selector starting at '{}'.";
    case OpStatus::kAclDefaultUndeletable: return "ERR The 'default' user cannot be removed";
    case OpStatus::kAclNoAclFile:
      return "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the "
             "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) "
             "in order to store users in the Redis configuration.";
    case OpStatus::kAclSaveFailed:
      return "ERR There was an error trying to save the ACLs. Please check the server logs for more information";
    case OpStatus::kAclLoadFailed: return "ERR {}";
    case OpStatus::kAclUnknownCategory: return "ERR Unknown category '{}'";
    case OpStatus::kAclGenpassBits:
      return "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up "
             "to 4096";
    case OpStatus::kAclDryRunNoUser: return "ERR User '{}' not found";
    case OpStatus::kAclDryRunNoCommand: return "ERR Command '{}' not found";
    case OpStatus::kNoPermCommand: return "NOPERM this user has no permissions to run the '{}' command";
    case OpStatus::kNoPermKey:
      return "NOPERM this user has no permissions to access one of the keys used as arguments";
    case OpStatus::kNoPermChannel:
      return "NOPERM this user has no permissions to access one of the channels used as arguments";
    case OpStatus::kAclDryRunCommand: return "This user has no permissions to run the '{}' command";
    case OpStatus::kAclDryRunKey: return "This user has no permissions to access the '{}' key";
    case OpStatus::kAclDryRunChannel: return "This user has no permissions to access the '{}' channel";
    case OpStatus::kAclFileOpen: return "Error loading ACLs, opening file '{}': {}";
    case OpStatus::kAclFileQuotes: return "{}:{}: unbalanced quotes in acl line. ";
    case OpStatus::kAclFileNoUser: return "{}:{} should start with user keyword followed by the username. ";
    case OpStatus::kAclFileBadName: return "'{}:{}: username '{}' contains invalid characters. ";
    case OpStatus::kAclFileDuplicate: return "WARNING: Duplicate user '{}' found on line {}. ";
    case OpStatus::kAclFileParen: return "{}:{}: Unmatched parenthesis in selector definition.";
    case OpStatus::kAclFileUnknown: return "{}:{}: Error in applying operation '{}': {}. ";
    case OpStatus::kAclFileRule: return "{}:{}: {}. ";
    case OpStatus::kAclFileNothingChanged:
      return "WARNING: ACL errors detected, no change to the previously active ACL rules was performed";
    case OpStatus::kStatusCount: break;
  }
  return "ERR internal error";
}

}  // namespace larder
