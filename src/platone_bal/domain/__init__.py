"""The pure model: readings, leaves, users. No I/O and no framework imports here."""
