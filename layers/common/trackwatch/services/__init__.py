"""Use cases: each runs one job against the ports, with the pure logic deciding."""
