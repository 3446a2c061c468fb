"""Everything that touches the world: Nostr wire and crypto, relays, stores,
key store, CLI and the composition root."""
