"""Test helpers: real relays on loopback and nostr-sdk as an independent oracle."""
