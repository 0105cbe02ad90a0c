#!/bin/sh
# On purge (deb: "purge"; rpm has none, its erase is "0") removes the
# state, which holds the embedded NATS store: checkpoints and history.
# The user stays, as Debian's policy asks, so that no later user gets its
# files' ids.
set -e
root="${DPKG_ROOT:-}"
if [ "$1" = "purge" ]; then
	rm -rf "$root/var/lib/tqflow" "$root/etc/tqflow"
fi
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
