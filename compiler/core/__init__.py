"""Shared helpers every stage uses: errors, YAML with locations, durations, sqlglot builders, the DAG, engines."""
