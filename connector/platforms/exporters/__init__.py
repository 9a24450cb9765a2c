"""Generators of the no-code platform apps, all derived from :mod:`connector.platforms.catalog`."""
