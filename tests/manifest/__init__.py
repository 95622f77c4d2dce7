"""Tests of bulkops.manifest."""
