"""One module per outside thing: store, broker, keys, secrets."""
