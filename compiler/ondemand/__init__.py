"""On-demand features: SQL expressions checked at compile time, put in the training query offline and evaluated
in-process online with the warehouse's semantics."""
