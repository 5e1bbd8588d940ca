"""hikari 2.x against Concord: READY, GUILD_CREATE, send, edit, react, delete.

Usage: hikari_smoke.py http://127.0.0.1:8080
hikari takes the gateway URL from GET /gateway/bot and insists on zlib-stream transport compression
with BINARY frames, so this also covers that path. Every step is checked against the gateway event it
must produce; the script exits non-zero on the first mismatch or after a timeout, and prints
'hikari: N passed, 0 failed' when every check held.

With CONCORD_SMOKE_LINGER_S=N (default 0) the bot then stays connected N more seconds and must see
no disconnect: run the server with a short --heartbeat-interval-ms so that this covers heartbeats
(hikari reconnects as soon as one HEARTBEAT_ACK is missing).
"""

import asyncio
import math
import os
import sys
import uuid

import aiohttp
import hikari

BASE = sys.argv[1].rstrip("/")
API = BASE + "/api/v10"
TIMEOUT = 15
LINGER = float(os.environ.get("CONCORD_SMOKE_LINGER_S", "0"))
passed = 0


class Failed(Exception):
    """A check that did not hold; ends the run after the bot is closed."""


def check(cond, what):
    global passed
    if not cond:
        raise Failed(what)
    passed += 1
    print(f"ok: {what}")


async def rest(session, method, path, token=None, body=None, expect=(200, 201, 204)):
    headers = {"Authorization": token} if token else {}
    async with session.request(method, API + path, json=body, headers=headers) as resp:
        data = await resp.json() if resp.status != 204 else None
        if resp.status not in expect:
            print(f"unexpected body: {data}")
        check(resp.status in expect, f"{method} {path} -> {resp.status}")
        return data


async def setup():
    name = "hk" + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as s:
        owner = await rest(s, "POST", "/auth/register", body={"username": name, "password": "correct horse battery"})
        app = await rest(s, "POST", "/applications", owner["token"], {"name": name + "bot"})
        reset = await rest(s, "POST", f"/applications/{app['id']}/bot/reset", owner["token"])
        guild = await rest(s, "POST", "/guilds", owner["token"], {"name": "hikari guild"})
        channels = await rest(s, "GET", f"/guilds/{guild['id']}/channels", owner["token"])
        general = next(c for c in channels if c["type"] == 0)
        invite = await rest(s, "POST", f"/channels/{general['id']}/invites", owner["token"], {})
        await rest(s, "POST", f"/invites/{invite['code']}", "Bot " + reset["token"])
        return reset["token"], int(guild["id"]), int(general["id"])


async def main():
    token, guild_id, channel_id = await setup()

    intents = hikari.Intents.ALL_UNPRIVILEGED | hikari.Intents.MESSAGE_CONTENT | hikari.Intents.GUILD_MEMBERS
    bot = hikari.GatewayBot(token, rest_url=API, intents=intents, banner=None)
    events: asyncio.Queue = asyncio.Queue()
    disconnects = []

    async def on_disconnect(event):
        disconnects.append(event)

    bot.subscribe(hikari.ShardDisconnectedEvent, on_disconnect)

    # Subscribing to the base classes records DM-classified events too, so a guild event the library
    # mis-classifies (missing guild_id or member) shows up as a mismatch instead of a timeout.
    for base in (
        hikari.ShardReadyEvent,
        hikari.GuildAvailableEvent,
        hikari.GuildJoinEvent,
        hikari.MemberChunkEvent,
        hikari.MessageCreateEvent,
        hikari.MessageUpdateEvent,
        hikari.ReactionAddEvent,
        hikari.MessageDeleteEvent,
    ):
        bot.subscribe(base, events.put)

    async def next_event(kind, wanted):
        while True:
            try:
                event = await asyncio.wait_for(events.get(), TIMEOUT)
            except (asyncio.TimeoutError, TimeoutError):
                raise Failed(f"timed out waiting for {wanted.__name__}") from None
            if isinstance(event, kind):
                check(isinstance(event, wanted), f"{type(event).__name__} is a {wanted.__name__}")
                return event

    await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
    try:
        ready = await next_event(hikari.ShardReadyEvent, hikari.ShardReadyEvent)
        me = bot.get_me()
        check(me is not None and me.is_bot and ready.my_user.id == me.id, "READY: current user is the bot")
        check(ready.application_id is not None, "READY: application")
        check(guild_id in ready.unavailable_guilds, "READY: guild listed as unavailable")

        await next_event((hikari.GuildAvailableEvent, hikari.GuildJoinEvent), hikari.GuildAvailableEvent)
        guild = bot.cache.get_guild(guild_id)
        check(guild is not None, "GUILD_CREATE cached the guild")
        check(bot.cache.get_guild_channel(channel_id) is not None, "GUILD_CREATE carried the channels")
        check(bot.cache.get_member(guild_id, me.id) is not None, "GUILD_CREATE carried the bot's member")
        # With GUILD_MEMBERS and a member cache, hikari asks for every member with op 8 at startup.
        chunk = await next_event(hikari.MemberChunkEvent, hikari.MemberChunkEvent)
        check(chunk.guild_id == guild_id and chunk.chunk_index == 0 and chunk.chunk_count == 1, "GUILD_MEMBERS_CHUNK")
        check(me.id in chunk.members and len(chunk.members) == 2, "GUILD_MEMBERS_CHUNK members")

        sent = await bot.rest.create_message(channel_id, "hello from hikari")
        created = await next_event(hikari.MessageCreateEvent, hikari.GuildMessageCreateEvent)
        check(created.message_id == sent.id and created.content == "hello from hikari", "MESSAGE_CREATE")
        check(created.author_id == me.id and created.guild_id == guild_id, "MESSAGE_CREATE author and guild")

        await bot.rest.edit_message(channel_id, sent.id, "edited by hikari")
        edited = await next_event(hikari.MessageUpdateEvent, hikari.GuildMessageUpdateEvent)
        check(edited.message_id == sent.id and edited.content == "edited by hikari", "MESSAGE_UPDATE")

        await bot.rest.add_reaction(channel_id, sent.id, "\N{FIRE}")
        reacted = await next_event(hikari.ReactionAddEvent, hikari.GuildReactionAddEvent)
        check(reacted.message_id == sent.id and reacted.emoji_name == "\N{FIRE}", "MESSAGE_REACTION_ADD")
        check(reacted.user_id == me.id and reacted.member.id == me.id, "reaction user and member")

        await bot.rest.delete_message(channel_id, sent.id)
        deleted = await next_event(hikari.MessageDeleteEvent, hikari.GuildMessageDeleteEvent)
        check(deleted.message_id == sent.id and deleted.channel_id == channel_id, "MESSAGE_DELETE")
        check(deleted.guild_id == guild_id, "MESSAGE_DELETE guild")

        if LINGER > 0:
            await asyncio.sleep(LINGER)
            check(math.isfinite(bot.heartbeat_latency), f"heartbeats acknowledged over {LINGER:g} s")
        check(not disconnects, "no disconnect during the run")
    finally:
        await bot.close()
    print(f"hikari: {passed} passed, 0 failed")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 4 * TIMEOUT + LINGER))
    except (Failed, asyncio.TimeoutError, TimeoutError) as failure:
        print(f"FAILED: {str(failure) or 'timed out'}")
        print(f"hikari: {passed} passed, 1 failed")
        sys.exit(1)
