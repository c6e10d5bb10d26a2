#!/bin/sh
# tests/systemd-unit.sh UNIT FERRYD: the unit passes `systemd-analyze verify`
# without a word (warnings such as unknown keys fail too) and keeps the
# settings ferry relies on. A template (NAME@.service) is verified through an
# instance of it (verifying the template file itself checks nothing), and must
# take its configuration and runtime directory from the instance name.
set -eu
unit=$1
ferryd=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
name=$(basename "$unit")
sed "s|/usr/local/bin/ferryd|$ferryd|" "$unit" > "$dir/$name"
case $name in
*@.service) check=${name%.service}demo.service ;;
*) check=$name ;;
esac
if ! out=$(systemd-analyze verify "$dir/$check" 2>&1) || [ -n "$out" ]; then
	echo "systemd-analyze verify: ${out:-failed}"
	exit 1
fi
wants="Type=notify NotifyAccess=main KillMode=mixed WatchdogSec= NoNewPrivileges=yes
	ProtectSystem=strict PrivateTmp=yes ProtectHome=yes CapabilityBoundingSet=
	SystemCallFilter=@system-service LimitCORE=0 UMask=0077"
case $name in
*@.service) wants="$wants ExecStart=$ferryd.-c./etc/ferry/%i.conf$ RuntimeDirectory=ferry/%i$" ;;
esac
for want in $wants; do
	grep -q "^$want" "$dir/$name" || { echo "missing: $want"; exit 1; }
done
# The template keeps the plain unit's sandbox and settings: every setting of ferry.service
# beside it, except those naming the instance, is in the template as it is.
case $name in
*@.service)
	grep -E '^[A-Za-z]+=' "$(dirname "$unit")/ferry.service" |
		grep -vE '^(Description|ExecStart|RuntimeDirectory|StateDirectory)=' |
		while IFS= read -r line; do
			grep -qxF "$line" "$unit" || { echo "not as in ferry.service: $line"; exit 1; }
		done
	;;
esac
echo "$name: verified"
