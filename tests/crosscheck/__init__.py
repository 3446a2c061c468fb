"""Cross-implementation checks against rust-nostr (``nostr-sdk``), in both directions."""
