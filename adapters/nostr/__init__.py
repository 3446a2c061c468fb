"""The Nostr protocol core: keys, NIP-01 events, NIP-44 v2, NIP-AE engrams and
NIP-AP persona events. Pure functions over bytes and strings, no I/O."""
