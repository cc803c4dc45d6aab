"""The console's page groups, one module per section."""
