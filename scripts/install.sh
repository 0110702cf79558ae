#!/usr/bin/env bash
# Installs everything slimfreeze needs on Debian 12 (bookworm), as root:
# system packages (mosquitto, upx from bookworm-backports, squashfs-tools, chromium, ...)
# and the Python packages into ./.venv. Idempotent: a second run installs nothing and
# takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
APT_PACKAGES=(mosquitto mosquitto-clients patchelf squashfs-tools binutils openssl chromium
              gcc ccache
              # runtime = "size" (build/runtime/): Debian's python3.11 source, unpacked by dpkg-source
              # and compiled with what the app and the freezer load (ctypes, zlib, ssl/hashlib).
              dpkg-dev make pkg-config libffi-dev zlib1g-dev libssl-dev libsqlite3-dev
              # target = "aarch64"/"armv7" (build/targets/): a Debian root of that architecture made
              # by mmdebstrap, its programs run by proot + qemu user-mode emulation.
              mmdebstrap gpg proot qemu-user-static
              # runtime = "size" for those targets: cross-compiled against the target's root.
              gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
              # Updates (build/update/, issue 19): diffoscope names where two builds differ; zstd
              # makes and applies patches (xdelta3 is measured against it by benchmarks/delta.py);
              # flash reaches devices with the OpenSSH client, its tests start a real sshd; rauc
              # makes and verifies the RAUC bundle of an image (build.py rauc).
              diffoscope-minimal zstd xdelta3 openssh-client openssh-server rauc)
BACKPORTS_PACKAGES=(upx-ucl)
BACKPORTS_FILE=/etc/apt/sources.list.d/slimfreeze-bookworm-backports.sources

log() { printf 'install: %s\n' "$*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "error: system packages are missing (${missing[*]}); run this script as root"
    exit 1
  fi
}

# Derive a bookworm-backports entry from the machine's own Debian entry, so no mirror
# address is written into the repository.
enable_backports() {
  [ -f "$BACKPORTS_FILE" ] && return 0
  if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  local src
  src=$(grep -lsE '^Suites:.*\bbookworm\b' /etc/apt/sources.list.d/*.sources | head -n 1 || true)
  if [ -n "$src" ]; then
    # First deb822 stanza whose Suites name plain bookworm; keep its URIs/Components/Signed-By.
    awk 'BEGIN{RS=""; FS="\n"} $0 ~ /Suites:[^\n]*(^|[ \t])bookworm([ \t]|$)/ && !done {
           for (i=1;i<=NF;i++) {
             if ($i ~ /^#/) continue
             if ($i ~ /^Suites:/) print "Suites: bookworm-backports"; else print $i
           }
           done=1 }' "$src" > "$BACKPORTS_FILE.tmp"
  elif [ -f /etc/apt/sources.list ]; then
    # One-line format: deb [options] URI SUITE COMPONENTS...; the options field is optional.
    awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                     if ($(i+1)=="bookworm") { $(i+1)="bookworm-backports"; print; exit } }' \
      /etc/apt/sources.list > "$BACKPORTS_FILE.list.tmp"
    if [ ! -s "$BACKPORTS_FILE.list.tmp" ]; then
      rm -f "$BACKPORTS_FILE.list.tmp"
      log "error: no Debian bookworm entry found in /etc/apt/sources.list to derive bookworm-backports from"
      exit 1
    fi
    mv "$BACKPORTS_FILE.list.tmp" "${BACKPORTS_FILE%.sources}.list"
    log "enabled bookworm-backports in ${BACKPORTS_FILE%.sources}.list"
    return 0
  fi
  if [ ! -s "$BACKPORTS_FILE.tmp" ]; then
    rm -f "$BACKPORTS_FILE.tmp"
    log "error: no Debian bookworm entry found in /etc/apt to derive bookworm-backports from"
    exit 1
  fi
  mv "$BACKPORTS_FILE.tmp" "$BACKPORTS_FILE"
  log "enabled bookworm-backports in $BACKPORTS_FILE"
}

missing=()
for p in "${APT_PACKAGES[@]}" "${BACKPORTS_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A Python without venv/headers (Debian's own python3) needs them from Debian too.
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
"$PYTHON" -c 'import sysconfig,os,sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"],"Python.h")))' \
  || missing+=(python3-dev)

if [ ${#missing[@]} -gt 0 ]; then
  need_root
  export DEBIAN_FRONTEND=noninteractive
  enable_backports
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  regular=(); backports=()
  for p in "${missing[@]}"; do
    if [[ " ${BACKPORTS_PACKAGES[*]} " == *" $p "* ]]; then backports+=("$p"); else regular+=("$p"); fi
  done
  [ ${#regular[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${regular[@]}"
  [ ${#backports[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backports[@]}"
else
  log "system packages present"
fi

# The Python side: one venv, the project's own dependency lists from pyproject.toml.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.slimfreeze-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "pip install (run time, build and test dependencies)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r <("$VENV/bin/python" scripts/requirements.py)
  touch "$stamp"
else
  log "python packages present"
fi
log "done"
