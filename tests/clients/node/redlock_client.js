// The redlock package (v4, over ioredis) against a running server:
//   node redlock_client.js PORT KEY_A KEY_B
// with keys the caller placed on different shards: a lock on both is one
// script over both. Prints one JSON line; exits non-zero on a failure.
// Run by tests/integration/test_client_transactions.py.
const Redis = require("ioredis");
const Redlock = require("redlock");

async function main() {
  const [port, a, b] = process.argv.slice(2);
  const opts = { host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: 0,
                 retryStrategy: () => null };
  const r = new Redis(opts);
  await r.script("FLUSH"); // the first call meets NOSCRIPT and falls back to EVAL
  const once = new Redlock([r], { retryCount: 0 });
  const patient = new Redlock([r], { retryCount: 1000, retryDelay: 10, retryJitter: 5 });
  const out = {};

  const lock = await once.lock([a, b], 5000);
  out.values = [await r.get(a), await r.get(b)].map((v) => v === lock.value);
  try {
    await once.lock([b], 5000);
    out.rivalLocked = true;
  } catch (e) {
    out.rivalLocked = false;
    out.rivalError = e.name;
  }
  await lock.extend(20000);
  out.pttlAfterExtend = [await r.pttl(a), await r.pttl(b)].every((t) => t > 10000 && t <= 20000);
  await lock.unlock();
  out.afterUnlock = await r.exists(a, b);

  // A short lock expires; a patient client then gets it (polling, bounded by retryCount).
  const short = await once.lock([a, b], 200);
  const next = await patient.lock([a, b], 5000);
  out.nextAcquired = (await r.get(a)) === next.value && next.value !== short.value;
  try {
    await short.unlock(); // its value is gone: redlock reports that it unlocked nothing
    out.staleUnlock = "resolved";
  } catch (e) {
    out.staleUnlock = e.name;
  }
  out.stillHeld = (await r.get(b)) === next.value;
  await next.unlock();
  out.end = await r.exists(a, b);
  console.log(JSON.stringify(out));
  r.disconnect();
}

main().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
