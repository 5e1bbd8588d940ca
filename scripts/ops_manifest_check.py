#!/usr/bin/env python3
"""Checks that the deployment files agree with the concord binary and its source.

    ops_manifest_check.py --bin PATH --rendered NAME=FILE... [--compose FILE] [--dockerfile FILE]

Flags and CONCORD_* names are taken from the binary's own `--help` (so renaming a flag fails
here, not in a rollout); admin paths from src/admin.rs; drain constants from src/role.rs and
router/src/router.rs. Kubernetes schema validity is kubernetes-validate's job; this checks what
a schema cannot: that names, ports and timings line up across objects and with the code.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("api", "router", "shard")
failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------
# What the binary and the code accept


def help_text(binary, *args):
    out = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, check=True)
    return out.stdout


def parse_help(text):
    """Flags, env names and defaults of one `--help` page."""
    flags, envs, defaults = set(), {}, {}
    # clap prints each option as `  -x, --long <VALUE>` followed by its help, `[env: X=]` and
    # `[default: Y]` somewhere in the following lines, before the next option.
    blocks = re.split(r"\n(?=\s{2,}(?:-\w, )?--[a-z0-9-]+)", text)
    for block in blocks:
        m = re.match(r"\s*(?:-\w, )?(--[a-z0-9-]+)", block)
        if not m:
            continue
        flag = m.group(1)
        flags.add(flag)
        env = re.search(r"\[env: (CONCORD_[A-Z0-9_]+)", block)
        default = re.search(r"\[default: ([^\]]+)\]", block)
        if env:
            envs[env.group(1)] = flag
            if default:
                defaults[env.group(1)] = default.group(1)
    return flags, envs, defaults


def subcommands(text):
    section = text.split("Commands:", 1)[1].split("Options:", 1)[0] if "Commands:" in text else ""
    return {m.group(1) for m in re.finditer(r"^\s{2}([a-z][a-z-]*)\s", section, re.M)} - {"help"}


def code_facts():
    admin = (ROOT / "src/admin.rs").read_text()
    paths = set(re.findall(r'\.route\("(/[^"]*)"', admin))
    role = (ROOT / "src/role.rs").read_text()
    router = (ROOT / "router/src/router.rs").read_text()

    def secs(src, name):
        m = re.search(name + r": Duration = Duration::from_secs\((\d+)\)", src)
        if not m:
            fail("code", f"constant {name} not found; update ops_manifest_check.py")
            return 0
        return int(m.group(1))

    return paths, secs(role, "HTTP_DRAIN"), secs(router, "DRAIN_MARGIN")


# ---------------------------------------------------------------------------------------------
# Kubernetes


def selector_matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def listen_port(value, where):
    m = re.search(r":(\d+)$", str(value))
    if not m:
        fail(where, f"cannot read a port from {value!r}")
        return None
    return int(m.group(1))


def check_container_cli(where, args, env_names, binary):
    """args[0] must be a role, later `--flags` must be that role's; env names must exist."""
    if not args:
        fail(where, "no role argument (api, router or shard)")
        return None
    role = args[0]
    if role not in binary["roles"]:
        fail(where, f"role {role!r} is not a subcommand of the binary ({sorted(binary['roles'])})")
        return None
    for arg in args[1:]:
        if arg.startswith("--") and arg.split("=", 1)[0] not in binary["flags"][role]:
            fail(where, f"flag {arg.split('=', 1)[0]} is not accepted by `concord {role}`")
    for name in env_names:
        if name.startswith("CONCORD_") and name not in binary["envs"][role]:
            fail(where, f"environment variable {name} is not read by `concord {role}`")
    return role


def check_k8s(name, docs, binary, admin_paths, http_drain, drain_margin):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"]: set((d.get("data") or {}) | (d.get("stringData") or {}))
               for d in by_kind.get("Secret", [])}
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    pods = {}  # component -> (labels, container ports by name, workload)
    seen_roles = set()

    for w in workloads:
        wname = f"{name}/{w['kind']}/{w['metadata']['name']}"
        spec = w["spec"]["template"]["spec"]
        labels = w["spec"]["template"]["metadata"].get("labels", {})
        if not selector_matches(w["spec"]["selector"].get("matchLabels", {}), labels):
            fail(wname, "selector does not match the pod template's labels")
        pod_sc = spec.get("securityContext", {})
        for c in spec["containers"]:
            where = f"{wname}/{c['name']}"
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
                fail(where, "runAsNonRoot is not set")
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(where, "readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(where, "allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                fail(where, "capabilities do not drop ALL")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        fail(where, f"resources.{kind}.{r} missing")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
            pods[labels.get("app.kubernetes.io/component", w["metadata"]["name"])] = (labels, ports, w)
            if labels.get("app.kubernetes.io/name") != "concord":
                continue

            # Effective settings: container env over envFrom ConfigMaps over the binary's defaults.
            settings, env_names = {}, []
            for ref in c.get("envFrom", []):
                cm = ref.get("configMapRef", {}).get("name")
                if cm is None:
                    continue
                if cm not in configmaps:
                    fail(where, f"envFrom ConfigMap {cm} is not in the rendered output")
                    continue
                settings.update(configmaps[cm])
                env_names += list(configmaps[cm])
            for e in c.get("env", []):
                env_names.append(e["name"])
                if "value" in e:
                    settings[e["name"]] = e["value"]
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    if ref["name"] in secrets:
                        if ref["key"] not in secrets[ref["name"]]:
                            fail(where, f"Secret {ref['name']} has no key {ref['key']}")
                    elif ref["name"] != "concord-secrets":
                        # The only Secret an overlay may leave to the operator (prod).
                        fail(where, f"Secret {ref['name']} is neither rendered nor concord-secrets")
            for v in spec.get("volumes", []):
                s = v.get("secret")
                if s and s["secretName"] in secrets:
                    for item in s.get("items", []):
                        if item["key"] not in secrets[s["secretName"]]:
                            fail(where, f"Secret {s['secretName']} has no key {item['key']}")
            role = check_container_cli(where, c.get("args", []), env_names, binary)
            if role is None:
                continue
            seen_roles.add(role)
            defaults = binary["defaults"][role]

            def setting(env):
                return settings.get(env, defaults.get(env))

            expected = {"admin": listen_port(setting("CONCORD_ADMIN_LISTEN"), where)}
            if role in ("api", "router"):
                expected["http"] = listen_port(setting("CONCORD_LISTEN"), where)
            if role == "shard":
                expected["link"] = listen_port(setting("CONCORD_LINK_LISTEN"), where)
                advertise = setting("CONCORD_ADVERTISE_ADDR")
                if advertise and listen_port(advertise, where) != expected["link"]:
                    fail(where, f"CONCORD_ADVERTISE_ADDR {advertise} is not on the link port")
                if w["kind"] != "StatefulSet":
                    fail(where, "shards must run as a StatefulSet (node id = pod ordinal)")
                elif "--node-id" in c.get("args", []) or "CONCORD_NODE_ID" in settings:
                    # A fixed id would be shared by every replica; without one the binary reads
                    # the ordinal from $HOSTNAME (<name>-<ordinal> in a StatefulSet).
                    fail(where, "node id must come from the pod ordinal, not a fixed value")
                replicas = w["spec"].get("replicas", 1)
                if int(setting("CONCORD_SLOTS")) < replicas:
                    fail(where, f"CONCORD_SLOTS {setting('CONCORD_SLOTS')} < {replicas} shard replicas")
            for port_name, port in expected.items():
                if ports.get(port_name) != port:
                    fail(where, f"container port {port_name} is {ports.get(port_name)}, "
                                f"the process listens on {port}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                get = c.get(probe, {}).get("httpGet")
                if probe != "startupProbe" and not get:
                    fail(where, f"no HTTP {probe}")
                if not get:
                    continue
                if get["path"] not in admin_paths:
                    fail(where, f"{probe} path {get['path']} is not served by the admin listener "
                                f"({sorted(admin_paths)})")
                if get["port"] not in ("admin", expected["admin"]):
                    fail(where, f"{probe} is not on the admin port")
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                fail(where, "readiness must use /readyz")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                # /readyz fails while Redis is away; a liveness probe on it would restart every
                # pod during a Redis outage.
                fail(where, "liveness must use /healthz")

            # Grace periods against the process's own drain.
            grace = spec.get("terminationGracePeriodSeconds", 30)
            pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            need = pre_stop + http_drain
            if role == "router":
                need += int(setting("CONCORD_DRAIN_MS")) / 1000 + drain_margin
            if role == "shard":
                need += int(setting("CONCORD_LEASE_TTL_MS")) / 1000
            if grace < need:
                fail(where, f"terminationGracePeriodSeconds {grace} < {need:g} s of drain")

    for role in ROLES:
        if role not in seen_roles:
            fail(name, f"no workload runs `concord {role}`")

    services = by_kind.get("Service", [])
    for s in services:
        where = f"{name}/Service/{s['metadata']['name']}"
        sel = s["spec"].get("selector")
        if s["spec"].get("type") == "ExternalName" or not sel:
            continue
        targets = [p for p in pods.values() if selector_matches(sel, p[0])]
        if not targets:
            fail(where, "selector matches no pod template")
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            for labels, ports, _ in targets:
                if isinstance(tp, str) and tp not in ports:
                    fail(where, f"targetPort {tp} is not a container port name")
                if isinstance(tp, int) and tp not in ports.values():
                    fail(where, f"targetPort {tp} is not a container port")
    for w in by_kind.get("StatefulSet", []):
        svc = [s for s in services if s["metadata"]["name"] == w["spec"]["serviceName"]]
        if not svc:
            fail(f"{name}/StatefulSet/{w['metadata']['name']}", "serviceName has no Service")
        elif w["metadata"]["name"] == "concord-shard" and svc[0]["spec"].get("clusterIP") != "None":
            fail(f"{name}/Service/{svc[0]['metadata']['name']}", "shard Service must be headless")

    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for d in by_kind.get(kind, []):
            where = f"{name}/{kind}/{d['metadata']['name']}"
            sel = d["spec"].get("selector", d["spec"].get("podSelector", {})).get("matchLabels", {})
            targets = [p for p in pods.values() if selector_matches(sel, p[0])]
            if not targets:
                fail(where, "selector matches no pod template")
            for rule in d["spec"].get("ingress", []) if kind == "NetworkPolicy" else []:
                for p in rule.get("ports", []):
                    for _, ports, _ in targets:
                        if isinstance(p.get("port"), str) and p["port"] not in ports:
                            fail(where, f"port {p['port']} is not a container port name")
    for d in by_kind.get("PodDisruptionBudget", []):
        if "minAvailable" not in d["spec"] and "maxUnavailable" not in d["spec"]:
            fail(f"{name}/PodDisruptionBudget/{d['metadata']['name']}", "no budget")

    for h in by_kind.get("HorizontalPodAutoscaler", []):
        ref = h["spec"]["scaleTargetRef"]
        where = f"{name}/HorizontalPodAutoscaler/{h['metadata']['name']}"
        target = [w for w in workloads if w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"]]
        if not target:
            fail(where, f"scale target {ref['kind']}/{ref['name']} not rendered")
        elif target[0]["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "shard":
            fail(where, "shards are not autoscaled (a count change re-slots the cluster)")
        kinds = {m["type"] for m in h["spec"].get("metrics", [])}
        if kinds != {"Resource", "Pods"}:
            fail(where, f"expected a CPU and a per-pod requests/s metric, got {sorted(kinds)}")

    monitors = by_kind.get("ServiceMonitor", [])
    if not monitors:
        fail(name, "no ServiceMonitor")
    for m in monitors:
        where = f"{name}/ServiceMonitor/{m['metadata']['name']}"
        if m.get("apiVersion") != "monitoring.coreos.com/v1":
            fail(where, f"apiVersion {m.get('apiVersion')}")
        sel = m["spec"]["selector"].get("matchLabels", {})
        selected = [s for s in services if selector_matches(sel, s["metadata"].get("labels", {}))]
        components = {s["metadata"]["labels"].get("app.kubernetes.io/component") for s in selected}
        for role in ROLES:
            if role not in components:
                fail(where, f"selects no Service of the {role} role")
        for ep in m["spec"]["endpoints"]:
            if ep.get("path", "/metrics") not in admin_paths:
                fail(where, f"path {ep.get('path')} is not served by the admin listener")
            for s in selected:
                if ep["port"] not in {p.get("name") for p in s["spec"]["ports"]}:
                    fail(where, f"Service {s['metadata']['name']} has no port named {ep['port']}")


# ---------------------------------------------------------------------------------------------
# docker-compose.yml and Dockerfile


def check_compose(path, binary, admin_paths):
    compose = yaml.safe_load(Path(path).read_text())
    roles = set()
    for sname, svc in compose["services"].items():
        where = f"{path}/{sname}"
        if "concord" not in str(svc.get("image", "")) and "build" not in svc:
            continue
        command = svc.get("command", [])
        command = command.split() if isinstance(command, str) else command
        env = svc.get("environment", {})
        env = dict(e.split("=", 1) for e in env) if isinstance(env, list) else env
        role = check_container_cli(where, command, list(env), binary)
        if role is None:
            continue
        roles.add(role)
        defaults = binary["defaults"][role]
        setting = lambda k: env.get(k, defaults.get(k))  # noqa: E731
        listens = {"admin": listen_port(setting("CONCORD_ADMIN_LISTEN"), where)}
        if role in ("api", "router"):
            listens["http"] = listen_port(setting("CONCORD_LISTEN"), where)
        if role == "shard":
            link = listen_port(setting("CONCORD_LINK_LISTEN"), where)
            if listen_port(setting("CONCORD_ADVERTISE_ADDR") or "", where) != link:
                fail(where, "CONCORD_ADVERTISE_ADDR is not on the link port")
        for mapping in svc.get("ports", []):
            container = int(str(mapping).rsplit(":", 1)[-1].split("/")[0])
            if container not in listens.values():
                fail(where, f"published container port {container} is not one the process "
                            f"listens on ({sorted(listens.values())})")
        test = " ".join(svc.get("healthcheck", {}).get("test", []))
        for path_used in re.findall(r"https?://[^/\s]+(/[^\s\"']*)", test):
            if path_used not in admin_paths:
                fail(where, f"healthcheck path {path_used} is not served by the admin listener")
    for role in ROLES:
        if role not in roles:
            fail(path, f"no service runs `concord {role}`")


def check_dockerfile(path, binary):
    all_envs = set().union(*binary["envs"].values())
    for name in re.findall(r"\b(CONCORD_[A-Z0-9_]+)=", Path(path).read_text()):
        if name not in all_envs:
            fail(path, f"ENV {name} is not read by the binary")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rendered", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--compose")
    ap.add_argument("--dockerfile")
    a = ap.parse_args()

    top = help_text(a.bin)
    binary = {"roles": subcommands(top) - {"cluster"}, "flags": {}, "envs": {}, "defaults": {}}
    if set(ROLES) - binary["roles"]:
        fail(a.bin, f"missing role subcommands: {set(ROLES) - binary['roles']}")
    for role in binary["roles"]:
        flags, envs, defaults = parse_help(help_text(a.bin, role))
        binary["flags"][role], binary["envs"][role], binary["defaults"][role] = flags, envs, defaults
    if not binary["envs"].get("shard"):
        fail(a.bin, "could not read any CONCORD_* variable from `--help`; has its format changed?")
    admin_paths, http_drain, drain_margin = code_facts()
    if not {"/metrics", "/healthz", "/readyz"} <= admin_paths:
        fail("src/admin.rs", f"admin routes are {sorted(admin_paths)}")

    for spec in a.rendered:
        name, file = spec.split("=", 1)
        docs = [d for d in yaml.safe_load_all(Path(file).read_text()) if d]
        check_k8s(name, docs, binary, admin_paths, http_drain, drain_margin)
    if a.compose:
        check_compose(a.compose, binary, admin_paths)
    if a.dockerfile:
        check_dockerfile(a.dockerfile, binary)

    for f in failures:
        print(f"FAIL {f}")
    if failures:
        sys.exit(1)
    print(f"ok: {', '.join(n.split('=')[0] for n in a.rendered)}"
          f"{', ' + a.compose if a.compose else ''}{', ' + a.dockerfile if a.dockerfile else ''}"
          f" agree with {a.bin} ({sum(len(f) for f in binary['flags'].values())} role flags)")


if __name__ == "__main__":
    main()
