#!/bin/sh
# Lets the tqflow group read the configuration, and tells systemd about
# the unit. The unit is not started: tqflow init writes the configuration
# first.
set -e
root="${DPKG_ROOT:-}"
# The group id is read from the root being installed, not looked up by
# name on the host (which differ under dpkg --root).
gid="$(grep '^tqflow:' "$root/etc/group" | cut -d: -f3)"
chown "root:$gid" "$root/etc/tqflow" "$root/etc/tqflow/tqflow.env"
chmod 0750 "$root/etc/tqflow"
chmod 0640 "$root/etc/tqflow/tqflow.env"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
cat <<'MSG'
tqflow installed. Next:
  sudo tqflow init -c /etc/tqflow        # asks for, checks and writes the settings
  sudo systemctl enable --now tqflow     # runs the pipeline
  sudo tqflow status                     # the run's record is its user's and root's only
MSG
