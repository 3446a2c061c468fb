"""Reconciliation against relays: refresh what the relays hold, plan, and apply
publish commands idempotently (seal once, store, send, confirm by read-back)."""
