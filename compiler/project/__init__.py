"""The project compiler: project files and Jinja templates in, a `CompiledProject` of sqlglot trees out."""
