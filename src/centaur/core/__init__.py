"""Foundations every other layer uses: errors, logging, seeding, safe image opening."""
