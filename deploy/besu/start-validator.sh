#!/bin/bash
# Starts validator $1 (besu-1 ... besu-4) of the compose QBFT network with its key from
# besu-init. Enode URLs take IP addresses, not host names (Besu's DNS support is early
# access, for permissioned networks only), so the bootnodes are the other validators
# whose containers run now, resolved at each start: besu-1 starts alone the first time
# and the others find it; after a restart, a node finds those still running.
set -euo pipefail
self="$1"
bootnodes=()
for n in 1 2 3 4; do
    peer="besu-$n"
    [ "$peer" = "$self" ] && continue
    address=$(getent hosts "$peer" | awk '{ print $1; exit }' || true)
    [ -n "$address" ] || continue
    bootnodes+=("enode://$(sed 's/^0x//' "/network/$peer/key.pub")@$address:30303")
done
args=(
    --config-file=/besu-config/config.toml
    --node-private-key-file="/network/$self/key"
    --p2p-host="$(hostname -i | awk '{ print $1 }')"
)
if [ "${#bootnodes[@]}" -gt 0 ]; then
    args+=("--bootnodes=$(IFS=,; echo "${bootnodes[*]}")")
fi
exec besu "${args[@]}"
