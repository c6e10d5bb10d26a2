#!/bin/sh
# tests/systemd-unit.sh UNIT FERRYD: the unit passes `systemd-analyze verify`
# without a word (warnings such as unknown keys fail too) and keeps the
# settings ferry relies on.
set -eu
unit=$1
ferryd=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/ferryd|$ferryd|" "$unit" > "$dir/ferry.service"
if ! out=$(systemd-analyze verify "$dir/ferry.service" 2>&1) || [ -n "$out" ]; then
	echo "systemd-analyze verify: ${out:-failed}"
	exit 1
fi
for want in Type=notify NotifyAccess=main KillMode=mixed WatchdogSec= NoNewPrivileges=yes \
	ProtectSystem=strict PrivateTmp=yes ProtectHome=yes CapabilityBoundingSet= \
	SystemCallFilter=@system-service LimitCORE=0 UMask=0077; do
	grep -q "^$want" "$dir/ferry.service" || { echo "missing: $want"; exit 1; }
done
echo "ferry.service: verified"
