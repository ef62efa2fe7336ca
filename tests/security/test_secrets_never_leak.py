"""Secrets stay secret (docs/design.md §4.6): scan logs, Events, status and metrics for test secrets.

Every place a secret could slip out is exercised: a working kubeconfig (its
token), a rejected token (401), a kubeconfig refused for an exec plugin whose
arguments carry a secret, one with broken key data, one whose server URL
carries user:password, YAML that does not parse around a token, and Secret
*data* synced by a rule. Then everything the operator produced is scanned:
every log record at DEBUG level (all loggers), every Event, every KRMSyncer
status and the /metrics exposition.
"""

from __future__ import annotations

import socket
import uuid

import aiohttp
import pytest
import yaml

from ray_syncer.kube.client import ResourceInfo
from ray_syncer.operator.reconciler import KRMSYNCER_RES, SECRET_RES
from tests.badinput.world import (
    CM,
    cm_rule,
    dest_ref,
    ensure_ns,
    get_or_none,
    put_cm,
    put_secret,
    put_syncer,
    syncer_obj,
    wait_condition,
    wait_for,
)

from .operator import operator_env

EVENTS = ResourceInfo("", "v1", "Event", "events", True)


def _secret(label: str) -> str:
    return f"s3cr3t-{label}-{uuid.uuid4().hex}"


@pytest.mark.timeout(120)
async def test_no_secret_in_logs_events_status_or_metrics() -> None:
    async with operator_env() as env:
        secrets: list[str] = []

        def new(label: str) -> str:
            s = _secret(label)
            secrets.append(s)
            return s

        good, bad = new("good-token"), new("revoked-token")
        env.dst.add_user(good, user="syncer")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        exec_arg, url_password, yaml_token, key_data, secret_value = (
            new("exec-arg"), new("url-password"), new("yaml-token"), new("key-data"),
            new("secret-data"),
        )

        def kubeconfig(**edits: object) -> str:
            d = env.dst.kubeconfig_dict(token=good)
            user, cluster = d["users"][0]["user"], d["clusters"][0]["cluster"]
            for k, v in edits.items():
                target = user if k in ("token", "exec", "client-key-data",
                                       "client-certificate-data") else cluster
                target[k] = v
            return str(yaml.safe_dump(d))

        cases = {
            "good": kubeconfig(),
            "revoked": kubeconfig(token=bad),
            "exec": kubeconfig(exec={"apiVersion": "client.authentication.k8s.io/v1beta1",
                                     "command": "get-token", "args": ["--secret", exec_arg]}),
            "userinfo": kubeconfig(server=f"http://admin:{url_password}@127.0.0.1:{closed}"),
            "badyaml": f"users: [{{token: {yaml_token}\n  - : :",
            "badkey": kubeconfig(**{"client-certificate-data": "bm90IGEgY2VydA==",
                                    "client-key-data": key_data}),
        }
        for name, text in cases.items():
            ns = f"sec-{name}"
            for c in (env.sc, env.dc):
                await ensure_ns(c, ns)
            await put_secret(env.sc, ns, "dest", {"kubeconfig": text})
            rules = [cm_rule(ns)]
            if name == "good":
                rules.append({"group": "", "version": "v1", "kind": "Secret", "namespaces": [ns]})
                await put_secret(env.sc, ns, "app-credentials", {"password": secret_value})
                await put_cm(env.sc, ns, "cfg", {"k": "v"})
            await put_syncer(env.sc, syncer_obj(ns, "s", {"rules": rules, "destination": dest_ref()}))

        await wait_for(lambda: get_or_none(env.dc, SECRET_RES, "sec-good", "app-credentials"),
                       what="the Secret synced")
        await wait_for(lambda: get_or_none(env.dc, CM, "sec-good", "cfg"), what="cfg synced")
        for name, reason in (("revoked", "Unauthorized"), ("exec", "ExecPluginRefused"),
                             ("userinfo", "KubeconfigInvalid"), ("badyaml", "KubeconfigInvalid"),
                             ("badkey", "KubeconfigInvalid")):
            await wait_condition(env.sc, f"sec-{name}", "s", "Ready", "False", reason)

        logs = "\n".join(env.capture.lines)
        events, _ = await env.sc.list_all(EVENTS)
        syncers, _ = await env.sc.list_all(KRMSYNCER_RES)
        statuses = yaml.safe_dump([s.get("status") for s in syncers])
        url = f"http://127.0.0.1:{env.http.port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            metrics = await resp.text()
        assert len(env.capture.lines) >= 5 and events and "krmsyncer_applies_total" in metrics
        where = {"logs": logs, "events": yaml.safe_dump(events), "status": statuses,
                 "metrics": metrics}
        leaks = [f"{label} in {place}" for place, text in where.items() for label in secrets
                 if label in text]
        assert leaks == []
