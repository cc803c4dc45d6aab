"""Operations support: queue status for `dunning status`, configuration and connectivity checks,
and the embedded demo (`dunning demo`)."""
