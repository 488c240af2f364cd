"""The run config: its schema, YAML and overrides, and resolving `auto` values from the data."""
