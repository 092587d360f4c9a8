"""Plain, typed functions, one pipeline stage each; testable without Prefect."""
