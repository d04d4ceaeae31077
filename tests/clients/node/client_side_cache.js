// node-redis 5's client-side cache (RESP3, CLIENT TRACKING) against a
// server: driven by tests/integration/test_client_side_caching.py.
//
//   node client_side_cache.js <port> <rule key> <new value of the rule key>
//
// Prints one JSON line after the first phase, then waits for a line on
// stdin (the test has changed the rule key's row in the database) and
// prints the final JSON line.
const { createClient } = require('redis');
const readline = require('readline');

const port = Number(process.argv[2]);
const ruleKey = process.argv[3];
const ruleNew = process.argv[4];

// Polls `read` until `ok(value)`, for at most `ms`; returns the last value.
async function poll(read, ok, ms = 10000) {
  const end = Date.now() + ms;
  let v;
  do {
    v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 20));
  } while (Date.now() < end);
  return v;
}

async function getCalls(admin) {
  const text = await admin.info('commandstats');
  const m = /cmdstat_get:calls=(\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

async function main() {
  const cached = createClient({
    socket: { host: '127.0.0.1', port },
    RESP: 3,
    clientSideCache: { ttl: 0, maxEntries: 1000, evictPolicy: 'LRU' },
  });
  const writer = createClient({ socket: { host: '127.0.0.1', port } });
  await cached.connect();
  await writer.connect();
  const cache = cached.clientSideCache;
  const out = {};

  // A plain key: the second read is served by the local cache.
  await writer.set('csc:plain', 'v1');
  const calls0 = await getCalls(writer);
  out.first = await cached.get('csc:plain');
  out.second = await cached.get('csc:plain');
  out.server_gets = (await getCalls(writer)) - calls0;
  out.hits = cache.stats().hitCount;
  // Another client's write invalidates it: the next read asks the server.
  await writer.set('csc:plain', 'v2');
  out.after_write = await poll(() => cached.get('csc:plain'), (v) => v === 'v2');

  // A caching rule's key: loaded from the database, then served locally.
  const calls1 = await getCalls(writer);
  const hits1 = cache.stats().hitCount;
  out.rule_first = await cached.get(ruleKey);
  out.rule_second = await cached.get(ruleKey);
  out.rule_server_gets = (await getCalls(writer)) - calls1;
  out.rule_hits = cache.stats().hitCount - hits1;
  console.log(JSON.stringify(out));

  // The row changes in the database (not through the server): the cache
  // learns it from the server's invalidation.
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => rl.once('line', resolve));
  rl.close();
  const t0 = Date.now();
  out.rule_after_update = await poll(() => cached.get(ruleKey), (v) => v === ruleNew, 15000);
  out.update_ms = Date.now() - t0;
  console.log(JSON.stringify(out));
  await cached.quit();
  await writer.quit();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
