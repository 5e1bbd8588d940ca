// discord.js 14 against Concord: READY, GUILD_CREATE, send, edit, react, delete.
//
// Usage: node tests/clients/djs_smoke.mjs http://127.0.0.1:8080 [DIR]
// discord.js is loaded from DIR (a directory holding node_modules/discord.js, or that node_modules
// directory itself), or else through NODE_PATH, e.g.
//   (cd /var/tmp/concord-djs && npm install discord.js@14)
//   node tests/clients/djs_smoke.mjs http://127.0.0.1:8080 /var/tmp/concord-djs
//   NODE_PATH=/var/tmp/concord-djs/node_modules node tests/clients/djs_smoke.mjs http://127.0.0.1:8080
// discord.js takes the gateway URL from GET /gateway/bot. Every step is checked against the gateway
// event it must produce; the script exits non-zero on the first mismatch or after a timeout, and
// prints 'discord.js: N passed, 0 failed' when every check held.
// With CONCORD_SMOKE_LINGER_S=N (default 0) the client then stays connected N more seconds and must
// see no disconnect: run the server with a short --heartbeat-interval-ms so that this covers
// heartbeats (discord.js reconnects as soon as one HEARTBEAT_ACK is missing).

import { createRequire } from "node:module";
import path from "node:path";

const BASE = (process.argv[2] ?? "").replace(/\/+$/, "");
if (!BASE) {
  console.error("usage: djs_smoke.mjs http://host:port [dir containing node_modules/discord.js]");
  process.exit(2);
}
const API = `${BASE}/api/v10`;
const TIMEOUT_MS = 20_000;
const LINGER_MS = Number(process.env.CONCORD_SMOKE_LINGER_S ?? "0") * 1000;
// createRequire resolves like CommonJS: node_modules above the anchor, then NODE_PATH.
const anchor = process.argv[3] ? path.resolve(process.argv[3]) : process.cwd();
const require = createRequire(path.join(anchor, "noop.js"));
const { Client, Events, GatewayIntentBits } = require("discord.js");

let passed = 0;
let client;

function fail(what) {
  console.log(`FAILED: ${what}`);
  console.log(`discord.js: ${passed} passed, 1 failed`);
  client?.destroy();
  process.exit(1);
}

function check(cond, what) {
  if (!cond) fail(what);
  passed += 1;
  console.log(`ok: ${what}`);
}

async function rest(method, route, token, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = token;
  const resp = await fetch(API + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const data = resp.status === 204 ? null : await resp.json();
  if (![200, 201, 204].includes(resp.status)) console.log("unexpected body:", data);
  check([200, 201, 204].includes(resp.status), `${method} ${route} -> ${resp.status}`);
  return data;
}

async function setup() {
  const name = `djs${Math.random().toString(16).slice(2, 10)}`;
  const owner = await rest("POST", "/auth/register", null, { username: name, password: "correct horse battery" });
  const app = await rest("POST", "/applications", owner.token, { name: `${name}bot` });
  const reset = await rest("POST", `/applications/${app.id}/bot/reset`, owner.token);
  const guild = await rest("POST", "/guilds", owner.token, { name: "discord.js guild" });
  const channels = await rest("GET", `/guilds/${guild.id}/channels`, owner.token);
  const general = channels.find((c) => c.type === 0);
  const invite = await rest("POST", `/channels/${general.id}/invites`, owner.token, {});
  await rest("POST", `/invites/${invite.code}`, `Bot ${reset.token}`);
  return { token: reset.token, guildId: guild.id, channelId: general.id };
}

// Buffers every event of interest so none is lost between an action and the wait for its event.
const queues = new Map();
const waiters = new Map();
function record(name, value) {
  const waiter = waiters.get(name);
  if (waiter) {
    waiters.delete(name);
    waiter(value);
  } else {
    if (!queues.has(name)) queues.set(name, []);
    queues.get(name).push(value);
  }
}
function next(name) {
  const queued = queues.get(name);
  if (queued?.length) return Promise.resolve(queued.shift());
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`timed out waiting for ${name}`), TIMEOUT_MS);
    waiters.set(name, (value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

async function main() {
  const { token, guildId, channelId } = await setup();

  client = new Client({
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMembers,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.GuildMessageReactions,
      GatewayIntentBits.MessageContent,
    ],
    rest: { api: `${BASE}/api`, timeout: TIMEOUT_MS },
  });
  client.on(Events.Error, (err) => fail(`client error: ${err}`));
  client.on(Events.ShardError, (err) => fail(`shard error: ${err}`));
  client.on(Events.ShardDisconnect, (ev) => fail(`shard disconnected with close code ${ev.code}`));
  client.on(Events.ShardReconnecting, () => fail("shard reconnecting"));
  client.once(Events.ClientReady, (c) => record("ready", c));
  client.on(Events.MessageCreate, (m) => record("create", m));
  client.on(Events.MessageUpdate, (before, after) => record("update", after));
  client.on(Events.MessageReactionAdd, (reaction, user) => record("react", { reaction, user }));
  client.on(Events.MessageDelete, (m) => record("delete", m));

  const started = Date.now();
  await client.login(token);
  await next("ready");
  // clientReady waits up to 15 s for a GUILD_CREATE per READY guild; a prompt one keeps this short.
  check(Date.now() - started < 10_000, "clientReady without waiting for the guild timeout");
  check(client.user?.bot === true, "READY: current user is the bot");
  check(client.application?.id != null, "READY: application");
  const guild = client.guilds.cache.get(guildId);
  check(guild !== undefined && guild.available, "GUILD_CREATE cached the guild as available");
  const channel = guild.channels.cache.get(channelId);
  check(channel !== undefined && channel.isTextBased(), "GUILD_CREATE carried the channels");
  check(guild.members.cache.has(client.user.id), "GUILD_CREATE carried the bot's member");

  const sent = await channel.send("hello from discord.js");
  const created = await next("create");
  check(created.id === sent.id && created.content === "hello from discord.js", "MESSAGE_CREATE");
  check(created.author.id === client.user.id && created.guildId === guildId, "MESSAGE_CREATE author and guild");

  await sent.edit("edited by discord.js");
  const updated = await next("update");
  check(updated.id === sent.id && updated.content === "edited by discord.js", "MESSAGE_UPDATE");

  await sent.react("\u{1F525}");
  const { reaction, user } = await next("react");
  check(reaction.message.id === sent.id && reaction.emoji.name === "\u{1F525}", "MESSAGE_REACTION_ADD");
  check(user.id === client.user.id, "reaction user");

  await sent.delete();
  const deleted = await next("delete");
  check(deleted.id === sent.id && deleted.channelId === channelId, "MESSAGE_DELETE");

  if (LINGER_MS > 0) {
    await new Promise((resolve) => setTimeout(resolve, LINGER_MS));
    check(client.ws.ping >= 0, `heartbeats acknowledged over ${LINGER_MS / 1000} s`);
  }

  client.removeAllListeners(Events.ShardDisconnect);
  client.removeAllListeners(Events.ShardReconnecting);
  await client.destroy();
  console.log(`discord.js: ${passed} passed, 0 failed`);
  process.exit(0);
}

setTimeout(() => fail("timed out"), 4 * TIMEOUT_MS + LINGER_MS).unref();
main().catch((err) => fail(`uncaught: ${err?.stack ?? err}`));
