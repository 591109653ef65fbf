#!/bin/sh
# Install anomaly-agent as a systemd service on Raspberry Pi OS / Debian (arm64, armhf, x86_64).
#
# Run on the gateway, from a checkout that has been built there (native addons are per machine):
#   npm ci && npm run build && sudo deploy/install.sh [--broker]
#   sudo deploy/install.sh --uninstall [--purge]
#
# Idempotent: running it again updates the program and the units and keeps the configuration
# (/etc/anomaly-agent) and the state (/var/lib/anomaly-agent: models, outbox).
#
# DESTDIR=/some/dir installs into that directory as if it were /, without creating the user or
# calling systemctl (for packaging, and for the tests).
set -eu

PREFIX=${PREFIX:-/opt/anomaly-agent}
DESTDIR=${DESTDIR:-}
USER_NAME=anomaly-agent
ETC=/etc/anomaly-agent
STATE=/var/lib/anomaly-agent
UNITS=/etc/systemd/system
SRC=$(cd "$(dirname "$0")/.." && pwd)

action=install
broker=no
purge=no
for arg in "$@"; do
  case $arg in
    --uninstall) action=uninstall ;;
    --purge) purge=yes ;;
    --broker) broker=yes ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }
# systemctl and user management only on the real root.
live() { [ -z "$DESTDIR" ]; }

if [ "$action" = uninstall ]; then
  if live && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now anomaly-agent.service anomaly-broker.service 2>/dev/null || true
  fi
  rm -f "$DESTDIR$UNITS/anomaly-agent.service" "$DESTDIR$UNITS/anomaly-broker.service"
  rm -rf "$DESTDIR$PREFIX"
  if [ "$purge" = yes ]; then
    rm -rf "$DESTDIR$ETC" "$DESTDIR$STATE"
    if live && id "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME" || true; fi
    say "removed the program, units, configuration, state and user"
  else
    say "removed the program and units; kept $ETC and $STATE (--purge removes them)"
  fi
  if live && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload || true; fi
  exit 0
fi

# --- checks -------------------------------------------------------------------------------------
NODE=$(command -v node || true)
[ -n "$NODE" ] || die "node is not installed (Node.js 20 or later is needed: https://nodejs.org or your distribution's nodejs package)"
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "node $("$NODE" --version) is too old; Node.js 20 or later is needed"
[ -f "$SRC/dist/agent/src/cli/main.js" ] || die "$SRC is not built: run 'npm ci && npm run build' there first"
[ -d "$SRC/node_modules" ] || die "$SRC has no node_modules: run 'npm ci' there first"
# The native addons must load with this node on this machine: node_modules built on another machine
# (an x86_64 workstation's, on a Pi) or for another Node would install and then fail at start.
# unix-dgram is optional for npm, but the unit is Type=notify: without it systemd never hears READY=1.
for m in i2c-bus onoff unix-dgram; do
  why=$("$NODE" -e 'try { require(process.argv[1]) } catch (e) { console.log(e.message.split("\n")[0]); process.exit(1) }' "$SRC/node_modules/$m") ||
    die "node_modules/$m does not load with node $("$NODE" --version) on this $(uname -m) machine: $why
run 'npm ci' here: it compiles the native addons (i2c-bus, epoll under onoff, unix-dgram), which needs build-essential and python3"
done
if live && [ "$(id -u)" -ne 0 ]; then die "run as root (sudo), or set DESTDIR to stage the files"; fi

# --- user -----------------------------------------------------------------------------------------
if live; then
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
    say "created system user $USER_NAME"
  fi
  # Only the groups that reach the sensors, where the system has them (Raspberry Pi OS does).
  for g in i2c gpio; do
    if getent group "$g" >/dev/null 2>&1; then usermod -a -G "$g" "$USER_NAME"; fi
  done
fi

# --- program --------------------------------------------------------------------------------------
# A fresh copy each time (an update must not keep files the new version dropped), swapped in whole.
mkdir -p "$DESTDIR$(dirname "$PREFIX")"
staging="$DESTDIR$PREFIX.new"
rm -rf "$staging"
mkdir -p "$staging"
cp -R "$SRC/dist" "$SRC/models" "$SRC/package.json" "$SRC/package-lock.json" "$staging/"
cp -R "$SRC/node_modules" "$staging/node_modules"
(cd "$staging" && npm prune --omit=dev --no-audit --no-fund >/dev/null 2>&1) || say "npm prune failed; development packages stay installed"
rm -rf "$DESTDIR$PREFIX.old"
if [ -d "$DESTDIR$PREFIX" ]; then mv "$DESTDIR$PREFIX" "$DESTDIR$PREFIX.old"; fi
mv "$staging" "$DESTDIR$PREFIX"
rm -rf "$DESTDIR$PREFIX.old"
say "program in $PREFIX ($("$NODE" -p "require('$DESTDIR$PREFIX/package.json').version"))"

# --- configuration and state ----------------------------------------------------------------------
mkdir -p "$DESTDIR$ETC" "$DESTDIR$STATE/models" "$DESTDIR$STATE/outbox"
if [ ! -f "$DESTDIR$ETC/agent.json" ]; then
  cp "$SRC/deploy/agent.json" "$DESTDIR$ETC/agent.json"
  say "wrote $ETC/agent.json (edit it: device id, sensors, broker)"
else
  say "kept $ETC/agent.json"
fi
# The shipped models, unless models are already there (flashed ones are not overwritten).
if [ -z "$(ls -A "$DESTDIR$STATE/models")" ]; then
  cp -R "$SRC/models/." "$DESTDIR$STATE/models/"
  say "installed the shipped models in $STATE/models"
fi
if live; then
  chown -R "$USER_NAME:$USER_NAME" "$STATE"
  chown root:"$USER_NAME" "$ETC" "$ETC/agent.json"
  chmod 0750 "$ETC" "$STATE"
  chmod 0640 "$ETC/agent.json"
fi

# --- units ----------------------------------------------------------------------------------------
mkdir -p "$DESTDIR$UNITS"
units=anomaly-agent
[ "$broker" = yes ] && units="anomaly-agent anomaly-broker"
for u in $units; do
  sed -e "s#@NODE@#$NODE#g" -e "s#@PREFIX@#$PREFIX#g" "$SRC/systemd/$u.service" >"$DESTDIR$UNITS/$u.service.tmp"
  mv "$DESTDIR$UNITS/$u.service.tmp" "$DESTDIR$UNITS/$u.service"
  say "unit $UNITS/$u.service"
done
if live && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  for u in $units; do systemctl enable "$u.service" >/dev/null 2>&1 && say "enabled $u.service"; done
  say "start it: systemctl start anomaly-agent; follow it: journalctl -u anomaly-agent -f"
fi
