"""SIGKILL of a shard process under live sessions (cluster mode, part 1 contract).

Identifies 48 users through a router, kills the shard process named by the pid file, and checks:
the sessions that lived on it are closed with a resumable code within 3 s (none hangs), the others
stay up (their heartbeats are still ACKed), and every closed client, reconnecting as libraries do
(Resume, then Identify after op 9), has a working session again within 20 s.

usage: cluster_kill.py REST_BASE GATEWAY_URL PID_FILE
"""
import asyncio
import json
import os
import random
import signal
import sys
import time

import aiohttp

REST = sys.argv[1].rstrip("/") + "/api/v10"
GATEWAY = sys.argv[2].rstrip("/") + "/?v=10&encoding=json"
PID_FILE = sys.argv[3]
USERS = 48
RESUMABLE = {1001, 1006, 4000, 4001, 4002, 4003, 4005, 4007, 4008, 4009}


async def register(http, k):
    body = {"username": f"kill{k}_{random.randrange(1 << 30)}", "password": "correct horse battery"}
    async with http.post(f"{REST}/auth/register", json=body) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["token"]


async def identify(http, token):
    ws = await http.ws_connect(GATEWAY)
    hello = await ws.receive_json(timeout=10)
    assert hello["op"] == 10, hello
    await ws.send_json({"op": 2, "d": {"token": token, "intents": 1, "properties": {}}})
    while True:
        msg = await ws.receive_json(timeout=10)
        if msg.get("t") == "READY":
            return ws, msg["d"]["session_id"], msg["s"]


async def closed_within(ws, seconds):
    """The close code if the socket closes within `seconds`, else None (after a heartbeat ACK)."""
    await ws.send_json({"op": 1, "d": None})
    deadline = time.monotonic() + seconds
    acked = False
    while time.monotonic() < deadline:
        try:
            msg = await ws.receive(timeout=deadline - time.monotonic())
        except asyncio.TimeoutError:
            break
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return ws.close_code or 1006
        if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data).get("op") == 11:
            acked = True
    return None if acked else -1


async def recover(http, token, session, seq):
    """Reconnects like a library: Resume; after op 9 or a resumable close, Identify."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            ws = await http.ws_connect(GATEWAY)
            await ws.receive_json(timeout=5)
            await ws.send_json({"op": 6, "d": {"token": token, "session_id": session, "seq": seq}})
            msg = await ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.TEXT:
                payload = json.loads(msg.data)
                if payload.get("op") == 9:
                    await ws.send_json({"op": 2, "d": {"token": token, "intents": 1, "properties": {}}})
                    while True:
                        m = await ws.receive_json(timeout=10)
                        if m.get("t") == "READY":
                            await ws.close()
                            return "reidentified"
                if payload.get("t") in ("RESUMED", "READY") or payload.get("op") == 0:
                    await ws.close()
                    return "resumed"
            await ws.close()
        except (aiohttp.ClientError, asyncio.TimeoutError, TypeError, ValueError):
            pass
        await asyncio.sleep(0.5)
    return None


async def main():
    async with aiohttp.ClientSession() as http:
        tokens = [await register(http, k) for k in range(USERS)]
        sessions = [await identify(http, t) for t in tokens]
        pid = int(open(PID_FILE).read().strip())
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        codes = await asyncio.gather(*(closed_within(ws, 3) for ws, _, _ in sessions))
        told = [i for i, c in enumerate(codes) if c is not None and c != -1]
        silent = [i for i, c in enumerate(codes) if c == -1]
        print(f"killed pid {pid}: {len(told)} sessions closed within 3 s, "
              f"{USERS - len(told) - len(silent)} kept, {len(silent)} neither")
        if silent:
            print(f"FAILED: sessions neither closed nor ACKed: {silent}")
            print("0 passed, 1 failed")
            sys.exit(1)
        if not told:
            print("FAILED: no session lived on the killed shard (48 users, and the victim holds the most slots)")
            print("0 passed, 1 failed")
            sys.exit(1)
        bad = [codes[i] for i in told if codes[i] not in RESUMABLE]
        if bad:
            print(f"FAILED: non-resumable close codes {bad}")
            print("0 passed, 1 failed")
            sys.exit(1)
        results = await asyncio.gather(
            *(recover(http, tokens[i], sessions[i][1], sessions[i][2]) for i in told))
        took = time.monotonic() - killed_at
        if any(r is None for r in results):
            print(f"FAILED: sessions not recovered: {results}")
            print("0 passed, 1 failed")
            sys.exit(1)
        print(f"all {len(told)} recovered within {took:.1f} s of the kill: {results.count('reidentified')} re-identified, {results.count('resumed')} resumed")
        for ws, _, _ in sessions:
            await ws.close()
        print("3 passed, 0 failed")


asyncio.run(main())
