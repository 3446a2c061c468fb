"""Event store configuration and fast access to the stored log."""
