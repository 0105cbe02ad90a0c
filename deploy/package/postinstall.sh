#!/bin/sh
# Lets the tqflow group read the configuration, and tells systemd about
# the unit. On a first install the unit is not started: tqflow init writes
# the configuration first. On an upgrade a running unit is restarted on
# the new files.
set -e
root="${DPKG_ROOT:-}"
# deb: "configure" with the version upgraded from; rpm: the number of
# versions installed, 2 during an upgrade.
upgrade=
case "$1" in
configure) [ -z "${2:-}" ] || upgrade=1 ;;
[2-9]*) upgrade=1 ;;
esac
# The group id is read from the root being installed, not looked up by
# name on the host (which differ under dpkg --root).
gid="$(grep '^tqflow:' "$root/etc/group" | cut -d: -f3)"
chown "root:$gid" "$root/etc/tqflow" "$root/etc/tqflow/tqflow.env"
chmod 0750 "$root/etc/tqflow"
chmod 0640 "$root/etc/tqflow/tqflow.env"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ -n "$upgrade" ]; then
		systemctl try-restart tqflow.service || true
	fi
fi
if [ -n "$upgrade" ]; then
	exit 0
fi
cat <<'MSG'
tqflow installed. Next:
  sudo tqflow init -c /etc/tqflow        # asks for, checks and writes the settings
  sudo systemctl enable --now tqflow     # runs the pipeline
  sudo tqflow status                     # the run's record is its user's and root's only
MSG
