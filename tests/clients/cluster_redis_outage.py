"""Redis lost while a cluster runs (cluster mode, part 1 contract).

Stops every Redis node of the cluster, then checks: a write through the API is refused with 503
and Discord's error body (and nothing of it is committed: it is absent after recovery), readiness
is false, reads still answer; then starts Redis again and checks that, by themselves, writes are
accepted again, readiness returns, and a fresh gateway session receives a message posted after.

usage: cluster_redis_outage.py REST_BASE GATEWAY_URL ADMIN_URL STOP_CMD START_CMD
"""
import asyncio
import random
import subprocess
import sys
import time

import aiohttp

REST = sys.argv[1].rstrip("/") + "/api/v10"
GATEWAY = sys.argv[2].rstrip("/") + "/?v=10&encoding=json"
ADMIN = sys.argv[3].rstrip("/")
STOP, START = sys.argv[4], sys.argv[5]
passed = 0


def check(cond, what):
    global passed
    if not cond:
        print(f"FAILED: {what}")
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok: {what}")


async def call(http, method, path, token=None, body=None):
    headers = {"Authorization": token} if token else {}
    async with http.request(method, REST + path, json=body, headers=headers) as r:
        text = await r.text()
        return r.status, (await r.json(content_type=None)) if text else None


async def main():
    async with aiohttp.ClientSession() as http:
        name = f"outage{random.randrange(1 << 30)}"
        status, reg = await call(http, "POST", "/auth/register",
                                 body={"username": name, "password": "correct horse battery"})
        check(status == 201, "registered")
        token = reg["token"]
        status, guild = await call(http, "POST", "/guilds", token, {"name": "outage"})
        check(status == 201, "guild created")
        status, channels = await call(http, "GET", f"/guilds/{guild['id']}/channels", token)
        channel = next(c for c in channels if c["type"] == 0)["id"]

        subprocess.run(STOP, shell=True, check=True)
        refused = None
        accepted, rejected = [], []
        deadline = time.monotonic() + 5
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            content = f"during outage {attempt}"
            status, body = await call(http, "POST", f"/channels/{channel}/messages", token,
                                      {"content": content})
            if status == 503:
                rejected.append(content)
                refused = refused or body
                if len(rejected) >= 3:
                    break
            elif status == 200:
                # Sent before the API noticed: committed, and published once Redis is back.
                accepted.append(content)
            await asyncio.sleep(0.1)
        check(refused is not None, "a write during the outage is refused with 503")
        check(isinstance(refused, dict) and "code" in refused and "message" in refused,
              f"the 503 carries Discord's error body ({refused})")
        async with http.get(ADMIN + "/readyz") as r:
            check(r.status == 503, "the API process is not ready")
        status, _ = await call(http, "GET", f"/channels/{channel}", token)
        check(status == 200, "reads still answer")

        subprocess.run(START, shell=True, check=True)
        back = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = await call(http, "POST", f"/channels/{channel}/messages", token,
                                      {"content": "after"})
            if status == 200:
                back = body
                break
            await asyncio.sleep(0.5)
        check(back is not None, "writes are accepted again once Redis is back")
        async with http.get(ADMIN + "/readyz") as r:
            check(r.status == 200, "the API process is ready again")
        status, messages = await call(http, "GET", f"/channels/{channel}/messages?limit=50", token)
        contents = {m["content"] for m in messages}
        check(not contents & set(rejected), f"nothing refused was committed ({len(rejected)} refused)")
        check(set(accepted) <= contents, f"every accepted write was kept ({len(accepted)} accepted)")

        # A fresh session gets the next message once every slot has an owner again.
        deadline = time.monotonic() + 30
        got = False
        while time.monotonic() < deadline and not got:
            try:
                ws = await http.ws_connect(GATEWAY)
                await ws.receive_json(timeout=5)
                await ws.send_json({"op": 2, "d": {"token": token, "intents": 1 | 512 | 32768,
                                                   "properties": {}}})
                while True:
                    msg = await ws.receive_json(timeout=5)
                    if msg.get("t") == "GUILD_CREATE":
                        break
                await call(http, "POST", f"/channels/{channel}/messages", token,
                           {"content": "delivered"})
                while True:
                    msg = await ws.receive_json(timeout=5)
                    if msg.get("t") == "MESSAGE_CREATE" and msg["d"]["content"] == "delivered":
                        got = True
                        break
            except (aiohttp.ClientError, asyncio.TimeoutError, TypeError, ValueError):
                await asyncio.sleep(0.5)
        check(got, "a new session receives messages after the outage")
        print(f"{passed} passed, 0 failed")


asyncio.run(main())
