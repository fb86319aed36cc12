"""Pydantic models at every boundary: Clickpost responses, shipment state, events."""
