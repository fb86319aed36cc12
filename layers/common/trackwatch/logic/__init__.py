"""Pure decisions: no I/O, no clocks, no AWS."""
