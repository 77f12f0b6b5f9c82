"""Tests of docshelf.embed (a package, so its module names cannot clash with other test folders')."""
