#!/bin/bash
# One-shot set-up of the compose QBFT network (service besu-init, image hyperledger/besu,
# run as root). Besu's own generator makes the 4 validator keys and the genesis file with
# them in extraData, as Besu's QBFT tutorial does (private-networks/tutorials/qbft), into
# the besu-network volume; no key is ever committed. Node N gets the N-th key in address
# order as /network/besu-N/key. Runs once: an existing genesis.json is kept, so the
# network (and the contracts on it) survive `docker compose down` and `up`.
set -euo pipefail
network=/network
if [ -f "$network/genesis.json" ]; then
    echo "QBFT network already generated: $(cat "$network"/besu-*/address | tr '\n' ' ')"
    exit 0
fi
work=$(mktemp -d)
besu operator generate-blockchain-config \
    --config-file=/besu-config/qbft-config.json \
    --to="$work/generated" --private-key-file-name=key
mapfile -t keys < <(find "$work/generated/keys" -mindepth 1 -maxdepth 1 -type d | sort)
if [ "${#keys[@]}" -ne 4 ]; then
    echo "expected 4 validator keys, Besu made ${#keys[@]}" >&2
    exit 1
fi
for n in 1 2 3 4; do
    node="$network/besu-$n"
    mkdir -p "$node"
    cp "${keys[$((n - 1))]}/key" "${keys[$((n - 1))]}/key.pub" "$node/"
    basename "${keys[$((n - 1))]}" > "$node/address"
    chmod 0400 "$node/key"
done
# the genesis file last: a run stopped before this point starts over
cp "$work/generated/genesis.json" "$network/genesis.json.partial"
mv "$network/genesis.json.partial" "$network/genesis.json"
# the validators run as the image's besu user (uid 1000)
chown -R besu:besu "$network" /data/besu-*
rm -rf "$work"
echo "QBFT network generated: 4 validators $(cat "$network"/besu-*/address | tr '\n' ' ')"
