"""Test helpers: real relays on loopback, a buzz relay double, nostr-sdk as an oracle."""
