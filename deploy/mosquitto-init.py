"""One-shot set-up of the stack's Mosquitto (compose service mosquitto-init, BAL image, root).

- TLS: a self-signed certificate (its own CA) for the host name `mosquitto`, made once in
  /tls (the broker's mosquitto-tls volume, key 0600 for the broker's user), and the
  certificate alone in /ca (mosquitto-ca, mounted by the BAL nodes as BAL_MQTT_CA_FILE
  and handed to devices). Replace both volumes' files with a CA-issued pair to use your own.
- Dynamic Security: the plugin's first state, holding only the BAL's service account
  (bal-service, password BAL_MQTT_PASSWORD, the plugin's admin role), in /mosquitto/data
  (mosquitto-data). Written once: afterwards the BAL keeps the plugin's state itself.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from platone_bal.adapters.dynsec_bootstrap import initial_dynsec_state
from platone_bal.adapters.tls import ensure_self_signed

MOSQUITTO_UID = 1883  # the eclipse-mosquitto image's mosquitto user and group
DATA = Path("/mosquitto/data")


def main() -> None:
    cert, key = ensure_self_signed(Path("/tls"), ["mosquitto"])
    for path in (cert.parent, cert, key):
        os.chown(path, MOSQUITTO_UID, MOSQUITTO_UID)
    shutil.copyfile(cert, "/ca/ca.pem")
    Path("/ca/ca.pem").chmod(0o644)
    dynsec = DATA / "dynamic-security.json"
    if not dynsec.exists():
        descriptor = os.open(dynsec, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(initial_dynsec_state(os.environ["BAL_MQTT_PASSWORD"]), handle)
        print(f"Dynamic Security: {dynsec} made with the service account bal-service")
    os.chown(DATA, MOSQUITTO_UID, MOSQUITTO_UID)
    os.chown(dynsec, MOSQUITTO_UID, MOSQUITTO_UID)
    print(f"Mosquitto TLS: {cert} (CA for the nodes and devices: mosquitto-ca volume)")


if __name__ == "__main__":
    main()
