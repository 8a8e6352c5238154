"""tests/deploy/check_structure.py - what the schemas cannot say.

    python check_structure.py METRICS_PAGE DASHBOARD ALERTS MANIFESTS...

Checks, printing one line per failure and exiting 1 on any:
- the dashboard JSON has the keys Grafana needs, panels with unique ids,
  grid positions and targets, and every kurir_* name in a panel's or an
  alert's expression is a metric the rendered page defines;
- every alert names a runbook section that docs/operations.md has;
- in each kustomize build (a multi-document YAML file): the kurir
  Deployment keeps its probes, its restricted security context,
  enableServiceLinks false and a termination grace period longer than
  KURIR_SHUTDOWN_GRACE_MS; its ConfigMap and Secret set every CONTRACT §2
  variable; autoscalers never go above the job topics' partition count.
"""
import json
import os
import re
import sys

import yaml

errors = []


def fail(msg):
    errors.append(msg)
    print("FAIL: " + msg)


def defined_metrics(page_path):
    names = set()
    with open(page_path) as f:
        for line in f:
            m = re.match(r"# TYPE (\S+) (\S+)", line)
            if not m:
                continue
            names.add(m.group(1))
            if m.group(2) == "histogram":
                for s in ("_bucket", "_sum", "_count"):
                    names.add(m.group(1) + s)
    return names


def check_names(where, expr, names):
    for name in re.findall(r"\bkurir_[a-z0-9_]+", expr):
        if name not in names:
            fail("%s: %s is not a metric kurir defines" % (where, name))


def check_dashboard(path, names):
    with open(path) as f:
        d = json.load(f)
    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time"):
        if key not in d:
            fail("%s: no %r" % (path, key))
    ids = set()
    exprs = 0
    for p in d.get("panels", []):
        title = p.get("title", "?")
        for key in ("id", "type", "title", "gridPos", "targets", "datasource"):
            if key not in p:
                fail("%s: panel %r has no %r" % (path, title, key))
        if p.get("id") in ids:
            fail("%s: panel id %s twice" % (path, p.get("id")))
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
            fail("%s: panel %r: gridPos needs integer h, w, x, y" % (path, title))
        if not p.get("targets"):
            fail("%s: panel %r has no targets" % (path, title))
        for t in p.get("targets", []):
            if not t.get("expr") or not t.get("refId"):
                fail("%s: panel %r: a target without expr or refId" % (path, title))
                continue
            exprs += 1
            check_names("%s: panel %r" % (path, title), t["expr"], names)
    if exprs == 0:
        fail("%s: no expressions at all" % path)
    return len(d.get("panels", [])), exprs


def check_alerts(path, names, operations_md):
    with open(path) as f:
        doc = yaml.safe_load(f)
    with open(operations_md) as f:
        anchors = set()
        for line in f:
            m = re.match(r"#+\s+(.*)", line)
            if m:
                anchors.add(re.sub(r"[^a-z0-9 -]", "", m.group(1).lower()).replace(" ", "-"))
    n = 0
    for g in doc["groups"]:
        for r in g["rules"]:
            n += 1
            check_names("%s: %s" % (path, r.get("alert")), r["expr"], names)
            rb = r.get("annotations", {}).get("runbook", "")
            anchor = rb.partition("#")[2]
            if not anchor or anchor not in anchors:
                fail("%s: %s: runbook %r is no heading of %s"
                     % (path, r.get("alert"), rb, operations_md))
    return n


CONTRACT_VARS = [
    "KURIR_KAFKA_BROKERS", "KURIR_KAFKA_GROUP", "KURIR_REDIS_URL",
    "KURIR_ACCOUNTS", "KURIR_HTTP_LISTEN", "KURIR_PUBLIC_URL",
    "KURIR_TOPIC_SEND", "KURIR_TOPIC_CAMPAIGN", "KURIR_TOPIC_CONTACTS",
    "KURIR_TOPIC_STATUS", "KURIR_TOPIC_REPLIES", "KURIR_TOPIC_DLQ",
    "KURIR_LOG_LEVEL",
]


def check_build(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by = {}
    for d in docs:
        by.setdefault(d["kind"], []).append(d)
    where = os.path.basename(path)
    deps = [d for d in by.get("Deployment", []) if d["metadata"]["name"] == "kurir"]
    if len(deps) != 1:
        fail("%s: want one Deployment kurir, found %d" % (where, len(deps)))
        return
    spec = deps[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        if probe not in c:
            fail("%s: kurir has no %s" % (where, probe))
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        fail("%s: readinessProbe is not /readyz" % where)
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        fail("%s: livenessProbe is not /healthz" % where)
    if spec.get("enableServiceLinks") is not False:
        fail("%s: enableServiceLinks is not false" % where)
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        fail("%s: runAsNonRoot is not true" % where)
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail("%s: seccompProfile is not RuntimeDefault" % where)
    if csc.get("readOnlyRootFilesystem") is not True:
        fail("%s: readOnlyRootFilesystem is not true" % where)
    if csc.get("allowPrivilegeEscalation") is not False:
        fail("%s: allowPrivilegeEscalation is not false" % where)
    if csc.get("capabilities", {}).get("drop") != ["ALL"]:
        fail("%s: capabilities are not drop [ALL]" % where)
    res = c.get("resources", {})
    if not res.get("requests") or not res.get("limits"):
        fail("%s: kurir needs resource requests and limits" % where)

    # Every CONTRACT §2 variable comes from the ConfigMap or the Secret the
    # container takes its environment from.
    env = {}
    for src in c.get("envFrom", []):
        if "configMapRef" in src:
            kind, name = "ConfigMap", src["configMapRef"]["name"]
        else:
            kind, name = "Secret", src["secretRef"]["name"]
        found = [d for d in by.get(kind, []) if d["metadata"]["name"] == name]
        if not found:
            fail("%s: envFrom names %s %s, which the build lacks" % (where, kind, name))
            continue
        env.update(found[0].get("data", {}))
        env.update(found[0].get("stringData", {}))
    for v in CONTRACT_VARS:
        if v not in env:
            fail("%s: %s is set by no ConfigMap or Secret" % (where, v))
    try:
        grace_ms = int(env.get("KURIR_SHUTDOWN_GRACE_MS", "20000"))
    except ValueError:
        grace_ms = -1
        fail("%s: KURIR_SHUTDOWN_GRACE_MS is not a number" % where)
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    if tgps * 1000 <= grace_ms:
        fail("%s: terminationGracePeriodSeconds %d is not longer than "
             "KURIR_SHUTDOWN_GRACE_MS %d" % (where, tgps, grace_ms))
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    acc = env.get("KURIR_ACCOUNTS", "")
    if os.path.dirname(acc) not in mounts:
        fail("%s: KURIR_ACCOUNTS %s is not on a mounted volume" % (where, acc))

    scalers = by.get("ScaledObject", []) + by.get("HorizontalPodAutoscaler", [])
    if not scalers:
        fail("%s: no ScaledObject or HorizontalPodAutoscaler" % where)
    for s in scalers:
        parts = s["metadata"].get("annotations", {}).get("kurir/job-topic-partitions")
        top = s["spec"].get("maxReplicaCount", s["spec"].get("maxReplicas"))
        if parts is None:
            fail("%s: %s has no kurir/job-topic-partitions annotation" % (where, s["kind"]))
        elif top is None or top > int(parts):
            fail("%s: %s may scale to %s replicas, over the %s partitions"
                 % (where, s["kind"], top, parts))
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        if kind not in by:
            fail("%s: no %s" % (where, kind))


def main():
    page, dashboard, alerts, operations_md = sys.argv[1:5]
    names = defined_metrics(page)
    if not names:
        fail("%s defines no metric" % page)
    before = len(errors)
    panels, exprs = check_dashboard(dashboard, names)
    if len(errors) == before:
        print("dashboard: %d panels, %d expressions, every metric defined" % (panels, exprs))
    before = len(errors)
    rules = check_alerts(alerts, names, operations_md)
    if len(errors) == before:
        print("alerts: %d rules, every metric defined, every runbook found" % rules)
    for build in sys.argv[5:]:
        before = len(errors)
        check_build(build)
        if len(errors) == before:
            print("manifests: %s: deployment, config and scaling invariants hold"
                  % os.path.basename(build))
    sys.exit(1 if errors else 0)


main()
