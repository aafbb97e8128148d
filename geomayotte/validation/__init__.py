"""Validation of partner data against the shared reference model (config/model/)."""
