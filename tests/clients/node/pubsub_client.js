// ioredis in subscriber mode against a running server:
//   node pubsub_client.js PORT COUNT
// A subscriber connection subscribes to a channel and a pattern (and tries a
// command subscriber mode forbids), a second connection publishes COUNT
// messages; prints one JSON line with what the subscriber received.
// Run by tests/integration/test_pubsub.py.
const Redis = require("ioredis");

async function main() {
  const [port, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  const opts = { host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: 0,
                 retryStrategy: () => null, lazyConnect: true };
  const sub = new Redis(opts);
  const pub = new Redis(opts);
  await sub.connect();
  await pub.connect();
  const out = { messages: [], pmessages: [] };
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  sub.on("message", (channel, message) => {
    out.messages.push([channel, message]);
    if (out.messages.length === count && out.pmessages.length === count) resolveDone();
  });
  sub.on("pmessage", (pattern, channel, message) => {
    out.pmessages.push([pattern, channel, message]);
    if (out.messages.length === count && out.pmessages.length === count) resolveDone();
  });
  out.subscribed = await sub.subscribe("news");
  out.psubscribed = await sub.psubscribe("ne*");
  try {
    await sub.get("x");
    out.forbidden = null;
  } catch (e) {
    out.forbidden = String(e.message);
  }
  out.numsub = await pub.pubsub("NUMSUB", "news");
  out.receivers = [];
  for (let i = 0; i < count; i++) out.receivers.push(await pub.publish("news", `m${i}`));
  await done;
  out.unsubscribed = await sub.unsubscribe("news");
  await sub.punsubscribe();
  out.afterPing = await sub.ping();
  console.log(JSON.stringify(out));
  sub.disconnect();
  pub.disconnect();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
