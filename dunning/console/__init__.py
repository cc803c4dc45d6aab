"""The operator console: a web page over the ledger and the broker (docs/console.md)."""
