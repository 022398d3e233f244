"""Clients of a running server: connection arguments, validation against swish_ref, the concurrency driver."""
