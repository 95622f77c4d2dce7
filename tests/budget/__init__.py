"""Tests of bulkops.budget."""
