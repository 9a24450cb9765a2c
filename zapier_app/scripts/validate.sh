#!/bin/sh
# `zapier-platform validate --without-style` under Node 22 (the CLI refuses older Node), offline
# once installed: Node 22 and the CLI come from the npm registry into a cache directory outside
# the app (the CLI must not be a dependency of the app itself).
set -eu
APP_DIR=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${ZAPIER_CLI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lre-bridge/zapier-cli-19.1.0}
if [ ! -x "$TOOLS/node_modules/.bin/zapier-platform" ] || [ ! -x "$TOOLS/node_modules/node/bin/node" ]; then
  echo "installing Node 22 and zapier-platform-cli 19.1.0 into $TOOLS" >&2
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --no-save node@22 zapier-platform-cli@19.1.0 >&2
fi
cd "$APP_DIR"
PATH="$TOOLS/node_modules/node/bin:$PATH" DISABLE_ZAPIER_ANALYTICS=1 \
  "$TOOLS/node_modules/.bin/zapier-platform" validate --without-style
