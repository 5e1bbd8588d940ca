"""discord.py 2.7 against Concord: login, READY, GUILD_CREATE, send, edit, react, delete.

Usage: dpy_smoke.py http://127.0.0.1:8080
Every step is checked against the gateway event it must produce; the script exits non-zero on the
first mismatch or after a timeout, and prints 'N passed, 0 failed' when every check held.
"""

import asyncio
import sys
import uuid

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket

BASE = sys.argv[1].rstrip("/")
# The gateway, when it is served apart from REST (a cluster's router).
GATEWAY = sys.argv[2].rstrip("/") if len(sys.argv) > 2 else BASE.replace("http", "ws", 1)
API = BASE + "/api/v10"
TIMEOUT = 15
passed = 0


def check(cond, what):
    global passed
    if not cond:
        print(f"FAILED: {what}")
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok: {what}")


async def rest(session, method, path, token=None, body=None, expect=(200, 201, 204)):
    headers = {"Authorization": token} if token else {}
    async with session.request(method, API + path, json=body, headers=headers) as resp:
        data = await resp.json() if resp.status != 204 else None
        if resp.status not in expect:
            print(f"unexpected body: {data}")
        check(resp.status in expect, f"{method} {path} -> {resp.status}")
        if resp.status != 204:
            check(resp.headers.get("Content-Type") == "application/json", f"{path} content type")
        return data


async def setup():
    name = "dpy" + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as s:
        owner = await rest(s, "POST", "/auth/register", body={"username": name, "password": "correct horse battery"})
        app = await rest(s, "POST", "/applications", owner["token"], {"name": name + "bot"})
        reset = await rest(s, "POST", f"/applications/{app['id']}/bot/reset", owner["token"])
        guild = await rest(s, "POST", "/guilds", owner["token"], {"name": "discord.py guild"})
        channels = await rest(s, "GET", f"/guilds/{guild['id']}/channels", owner["token"])
        general = next(c for c in channels if c["type"] == 0)
        invite = await rest(s, "POST", f"/channels/{general['id']}/invites", owner["token"], {})
        await rest(s, "POST", f"/invites/{invite['code']}", "Bot " + reset["token"])
        return reset["token"], int(guild["id"]), int(general["id"])


async def main():
    token, guild_id, channel_id = await setup()

    discord.http.Route.BASE = API
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(GATEWAY + "/")

    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)
    ready = asyncio.Event()
    events: asyncio.Queue = asyncio.Queue()

    @client.event
    async def on_ready():
        ready.set()

    @client.event
    async def on_message(message):
        await events.put(("create", message))

    @client.event
    async def on_raw_message_edit(payload):
        await events.put(("edit", payload))

    @client.event
    async def on_raw_reaction_add(payload):
        await events.put(("react", payload))

    @client.event
    async def on_raw_message_delete(payload):
        await events.put(("delete", payload))

    async def next_event(kind):
        while True:
            got, value = await asyncio.wait_for(events.get(), TIMEOUT)
            if got == kind:
                return value

    async with client:
        await client.login(token)
        check(client.user is not None and client.user.bot, "login: /users/@me and application info")
        runner = asyncio.create_task(client.connect(reconnect=False))
        await asyncio.wait_for(ready.wait(), TIMEOUT)
        check(True, "READY and on_ready after GUILD_CREATE")
        guild = client.get_guild(guild_id)
        check(guild is not None, "GUILD_CREATE cached the guild")
        channel = guild.get_channel(channel_id)
        check(channel is not None, "GUILD_CREATE carried the channels")

        sent = await channel.send("hello from discord.py")
        created = await next_event("create")
        check(created.id == sent.id and created.content == "hello from discord.py", "MESSAGE_CREATE")
        check(created.author.id == client.user.id, "MESSAGE_CREATE author")

        await sent.edit(content="edited by discord.py")
        edited = await next_event("edit")
        check(edited.message_id == sent.id and edited.data["content"] == "edited by discord.py", "MESSAGE_UPDATE")

        await sent.add_reaction("\N{FIRE}")
        reacted = await next_event("react")
        check(reacted.message_id == sent.id and str(reacted.emoji) == "\N{FIRE}", "MESSAGE_REACTION_ADD")
        check(reacted.user_id == client.user.id, "reaction user")

        await sent.delete()
        deleted = await next_event("delete")
        check(deleted.message_id == sent.id and deleted.channel_id == channel_id, "MESSAGE_DELETE")

        await client.close()
        runner.cancel()
    print(f"discord.py: {passed} passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main())
